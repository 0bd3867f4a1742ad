"""Person attributes: clothing read from the whole person crop (suit, dress, skirt, pants, shorts,
outwear), never who the person is. ``reader.PersonAttributeReader`` is the stage interface,
``model.PersonAttributeModel`` the int8 TFLite implementation, ``votes`` turns one look's scores
into consensus votes."""

from .reader import ATTRIBUTE_PREFIX, AttributeScores, PersonAttributeReader, attribute_label

__all__ = ["ATTRIBUTE_PREFIX", "AttributeScores", "PersonAttributeReader", "attribute_label"]
