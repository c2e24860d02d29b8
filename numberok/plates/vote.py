"""
The confidence-weighted vote that decides a track's best plate
(docs/plates.rst, "Voting").
"""

from __future__ import annotations

from typing import Callable, Optional

_SCALE = 1_000_000  # confidence in integer millionths: sums are exact


class _Length:
    """
    The reads of one length in a vote: per position the tally of each
    character and the current winner, kept up to date on every read.

    A cell's weight and count only grow, so after a read only the character
    just counted can overtake a position's winner: the winner is kept with
    one comparison per position instead of a scan of all characters.  And
    most reads of a track are its voted text itself, which can only make
    every winner stronger: such a read is added to a pending sum in O(1),
    and the sum is spread over the cells when a different text comes.
    """

    __slots__ = ("weight", "reads", "cells", "winners", "won", "bestRaw",
                 "voted", "pendingWeight", "pendingReads")

    def __init__(self, length: int) -> None:
        self.weight = 0
        self.reads = 0
        # one dict per position: char -> [summed weight, reads]
        self.cells: list[dict[str, list[int]]] = [{} for _ in range(length)]
        # per position: (summed weight, reads, -code point, char) of the
        # winner; the tuple order is the tie-break order.
        self.winners: list[tuple[int, int, int, str]] = [
            (-1, 0, 0, "")] * length
        self.won = 0  # the winners' summed weight, pending reads included
        self.bestRaw: Optional[tuple[int, str]] = None
        self.voted = "" if length == 0 else None  # the winners' text
        self.pendingWeight = 0
        self.pendingReads = 0

    def add(self, processed: str, raw: str, weight: int) -> None:
        self.weight += weight
        self.reads += 1
        if self.bestRaw is None or weight > self.bestRaw[0]:
            self.bestRaw = (weight, raw)
        if processed == self.voted:
            self.pendingWeight += weight
            self.pendingReads += 1
            self.won += weight * len(processed)
            return
        self._settle()
        winners = self.winners
        won = self.won
        for i, ch in enumerate(processed):
            counts = self.cells[i]
            cell = counts.get(ch)
            if cell is None:
                cell = counts[ch] = [weight, 1]
            else:
                cell[0] += weight
                cell[1] += 1
            old = winners[i]
            if old[3] == ch:
                won += weight
                winners[i] = (cell[0], cell[1], old[2], ch)
            else:
                rank = (cell[0], cell[1], -ord(ch), ch)
                if rank > old:
                    won += cell[0] - max(old[0], 0)
                    winners[i] = rank
        self.won = won
        self.voted = "".join([w[3] for w in winners])

    def _settle(self) -> None:
        """Spread the pending reads of the voted text over its cells."""
        if not self.pendingReads:
            return
        weight, reads = self.pendingWeight, self.pendingReads
        winners = self.winners
        for i, ch in enumerate(self.voted):
            cell = self.cells[i][ch]
            cell[0] += weight
            cell[1] += reads
            winners[i] = (cell[0], cell[1], winners[i][2], ch)
        self.pendingWeight = self.pendingReads = 0

    def text(self) -> str:
        return self.voted


class PlateVote:
    """
    Incremental confidence-weighted vote over one track's reads.

    Per read, L{add} touches at most one counter per character and keeps
    each position's winner, never the earlier reads, so a track with 100k reads
    costs what a track with ten does; L{best} is remembered until the next
    read.  Weights are kept in integer millionths so the result does not
    depend on the order the same reads arrived in (float sums would).

    The winning length is the one whose voted text fits a plate template
    (when the vote was given C{fits}), then the one with the highest
    summed confidence: partial reads at the frame edge often outnumber the
    whole plate, but they do not fit its template.  Ties, for a result
    that is reproducible: more reads, then the longer length (a recognizer
    drops characters more often than it invents them); per position the
    character with the highest summed confidence, then more reads, then the
    lowest code point; the reported raw read is the most confident one, the
    earliest of equals.

    The raw read of each processed text is kept for at most
    L{maxRawTexts} texts, the most confident ones: a flood of near-miss
    plates into one track must not grow it without end.  A text whose raw
    read was let go reports its length's most confident raw read.

    @ivar reads: how many reads were added.
    """

    maxRawTexts = 64

    def __init__(self, fits: Optional[Callable[[str], bool]] = None) -> None:
        self.reads = 0
        self._fits = fits
        self._lengths: dict[int, _Length] = {}
        # processed text -> (weight, raw) of its most confident read
        self._rawFor: dict[str, tuple[int, str]] = {}
        self._best: Optional[tuple[str, str, float]] = None

    def add(self, processed: str, raw: str, confidence: float) -> None:
        """
        Count one read.

        @param processed: the read after L{PlateRules.normalize}.
        @param raw: the read as recognized, reported as C{RawPlateNumber}
            when it wins.
        @param confidence: 0..1; values outside are clamped, NaN counts 0.
        """
        if not confidence > 0.0:  # also NaN
            weight = 0
        else:
            weight = round(min(confidence, 1.0) * _SCALE)
        self.reads += 1
        self._best = None
        length = len(processed)
        tally = self._lengths.get(length)
        if tally is None:
            tally = self._lengths[length] = _Length(length)
        tally.add(processed, raw, weight)
        rawFor = self._rawFor
        known = rawFor.get(processed)
        if known is not None:
            if weight > known[0]:
                rawFor[processed] = (weight, raw)
        elif len(rawFor) < self.maxRawTexts:
            rawFor[processed] = (weight, raw)
        else:
            weakest = min(rawFor, key=lambda text: rawFor[text][0])
            if weight > rawFor[weakest][0]:
                del rawFor[weakest]
                rawFor[processed] = (weight, raw)

    def best(self) -> tuple[str, str, float]:
        """
        The track's plate as voted so far.

        @return: C{(processed plate, raw read to report, confidence)}; the
            confidence is the winning characters' summed confidence over
            the reads of the winning length, averaged over positions: the
            mean read confidence when all agree, less when they disagree.
            C{("", "", 0.0)} before the first read.
        """
        if self._best is not None:
            return self._best
        if not self.reads:
            return ("", "", 0.0)
        lengths = self._lengths
        if len(lengths) == 1:
            [(length, tally)] = lengths.items()
            ranked = None
        else:
            ranked = sorted(lengths.items(), reverse=True,
                            key=lambda kv: (kv[1].weight, kv[1].reads, kv[0]))
            length, tally = ranked[0]
        plate = tally.text()
        if self._fits is not None and ranked and not self._fits(plate):
            for other, otherTally in ranked[1:]:
                text = otherTally.text()
                if self._fits(text):
                    length, tally, plate = other, otherTally, text
                    break
        known = self._rawFor.get(plate) or tally.bestRaw
        if length:
            confidence = tally.won / (length * tally.reads * _SCALE)
        else:
            confidence = tally.weight / (tally.reads * _SCALE)
        self._best = (plate, known[1], min(1.0, confidence))
        return self._best
