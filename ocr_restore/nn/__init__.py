"""Neural network layers and models: small modules, each tested on its own."""
