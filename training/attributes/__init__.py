"""Person-attribute model: clothing of the whole person crop (suit, dress, skirt, pants, shorts, outwear)."""
