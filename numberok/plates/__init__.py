"""
Plate text: the rules that turn a raw read into the processed plate, the
distance used to compare plates, and the confidence-weighted vote that
decides a track's best plate (docs/plates.rst).

One module per job -- L{alphabets} (the one look-alike table),
L{templates}, L{rules} (normalisation), L{vote}, L{matching} -- and every
name importable from here.  Nothing here knows about time, zones or
tracks: the analytics own those and call in with strings.
"""

from numberok.plates.alphabets import (ALPHABETS, CYRILLIC_LOOKALIKES,
                                       LATIN_TO_CYRILLIC, Alphabet, fold)
from numberok.plates.matching import distance, skeleton, within
from numberok.plates.rules import PlateRules, cleanRaw
from numberok.plates.templates import (DEFAULT_TEMPLATES, MAX_OPTIONAL_GROUPS,
                                       MAX_POSITIONS, MAX_TEMPLATES,
                                       PlateTemplate, PlateTemplates,
                                       parseTemplates)
from numberok.plates.vote import PlateVote

__all__ = [
    "ALPHABETS", "Alphabet", "CYRILLIC_LOOKALIKES", "DEFAULT_TEMPLATES",
    "LATIN_TO_CYRILLIC", "MAX_OPTIONAL_GROUPS", "MAX_POSITIONS",
    "MAX_TEMPLATES", "PlateRules", "PlateTemplate", "PlateTemplates",
    "PlateVote", "cleanRaw", "distance", "fold", "parseTemplates",
    "skeleton", "within",
]
