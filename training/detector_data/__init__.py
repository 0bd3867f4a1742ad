"""Detector datasets: Ultralytics YOLO layout from colorful-fashion + teacher person boxes,
store-like frames from ../shared/media, and converters for DeepFashion2 and ModaNet.

Modules: ``yolo_labels`` (validated label I/O), ``teacher`` (COCO person pseudo-labels),
``prepare`` (the project's training set), ``convert`` (user datasets).
"""

# Product classes of the garment detector; index = class id in every label file we write.
PRODUCT_CLASSES = [
    "person", "sunglass", "hat", "jacket", "shirt", "pants", "shorts", "skirt", "dress", "bag", "shoe",
]
GARMENT_CLASSES = PRODUCT_CLASSES[1:]
