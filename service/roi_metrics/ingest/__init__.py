"""What enters: strict JSON, the contract models, record decoding, topic creation and the
offline replay of an export. Imports the domain and the settings only."""
