"""The review console: people work the review queue; their decisions go to the workers."""
