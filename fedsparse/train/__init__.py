"""Local (client or centralized) training loops on in-memory tensors."""
