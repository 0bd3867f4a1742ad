"""Label vocabularies shared by the stages: which detector class names are garments.

Kept apart from the stages that use them so that the detector (``edge.detect.yolo``) and the
pre-flight need not import the crop stage (``edge.garments``) to know what a garment is.
"""

from __future__ import annotations

# Names (lower case) a detector label must have to count as a garment class; 'person' and
# accessories such as COCO's tie/handbag/backpack are not garments. Used by
# YoloDetector.garment_labels when the manifest does not list garment_labels itself.
GARMENT_VOCABULARY = frozenset(
    {
        "hat", "cap", "jacket", "coat", "outerwear", "outwear", "blazer", "suit", "shirt", "t-shirt",
        "tshirt", "longsleeve", "polo", "top", "blouse", "sweater", "sweatshirt", "hoodie", "cardigan",
        "vest", "dress", "skirt", "pants", "trousers", "jeans", "shorts", "shoe", "shoes", "boots",
        "sunglass", "sunglasses", "bag", "scarf",
    }
)
