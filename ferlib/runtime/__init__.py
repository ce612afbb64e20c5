"""How runs behave: progress to the terminal, TensorFlow's start-up lines kept quiet, paths as reports show them."""
