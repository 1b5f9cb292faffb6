"""ASGI apps that peer servers (Hypercorn, Granian) run for comparison."""
