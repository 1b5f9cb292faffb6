"""ASGI apps that peer servers (Hypercorn) run for comparison."""
