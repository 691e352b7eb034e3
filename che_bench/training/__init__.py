"""Turning a RunConfig into a trained model and its scores.

``train`` owns the optimizer, the length curriculum, divergence and progress;
``checkpoints`` the checkpoint files; ``evaluate`` the test-length sweep under a memory
budget; ``ensemble`` trains several seeds in one process; ``metrics`` the masked accuracy
both share. None of them touches the leaderboard.
"""
