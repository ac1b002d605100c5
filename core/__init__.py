"""The layer every other one stands on: the error type, image reading and writing, the device
choice and atomic file output. It imports nothing of stylecast's."""
