"""The pure domain: events to counter deltas, buckets and windows, money, the cost card, ROI.

Nothing here performs I/O or imports faust, redis, aiokafka or prometheus_client; every
number the product shows is decided here and tested in milliseconds.
"""
