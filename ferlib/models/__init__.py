"""Networks: the study's and C1's builders, saved models with their cards, LiteRT conversion and inference, the
shipped model, Grad-CAM."""
