"""The check's steps, each reported as it runs, and the orchestration that runs them in order."""
