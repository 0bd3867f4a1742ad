"""Dataset loaders for the garment classifier.

Every loader returns a list of :class:`~training.data.samples.Sample` (an image file, an optional
crop box and a dataset label). ``training.data.cache.load_images`` turns samples into one uint8
array of letterboxed RGB squares through ``edge.preprocess.classifier_input`` - the exact
function the daemon applies to a crop - and caches it under ``.cache/`` so a second run does not
decode a single JPEG again.
"""

from .samples import Sample

__all__ = ["Sample"]
