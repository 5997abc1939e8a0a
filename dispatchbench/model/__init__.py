"""The problem model: what a problem and a state are, how files become them, what a dispatch is,
and the one evaluator that scores every answer. Nothing here knows about any solver."""
