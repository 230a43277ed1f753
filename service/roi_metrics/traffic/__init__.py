"""What a support platform does: the simulator's traffic model, and publishing, simulating
and channel topics against Kafka."""
