"""Networks: the study's and C1's builders, saved models with their cards, Grad-CAM."""
