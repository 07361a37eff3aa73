"""The shared vocabulary of every layer: IR types, the error tree, the event bus."""
