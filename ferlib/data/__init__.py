"""Data in: folder layouts, decoding, manifests, decoded arrays, splits, tf.data, augmentation, embedded data."""
