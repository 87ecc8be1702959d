"""The one colour language of the dashboard and the HTML report, defined once.

Classes take the Okabe–Ito qualitative palette (distinguishable with the common colour-vision
deficiencies: Okabe & Ito, "Color Universal Design", 2008); every other colour follows what a value
means, not its sign: a rise in malicious traffic is `BAD` although it is positive, a fall is
`GOOD`. Colour is never the only cue: identities are also written out (`IDENTITY_MARKS`, a symbol
beside each name) and charts label their bars, so a reader who cannot tell the hues apart loses
nothing.
"""

from __future__ import annotations

from typing import Final

# Okabe–Ito: the eight colours of the palette, by their published names.
OKABE_ITO: Final = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# The four classes; people in blue, automation in the warm and green hues.
CLASS_COLOURS: Final = {
    "human": OKABE_ITO["blue"],
    "crawler": OKABE_ITO["orange"],
    "scraper": OKABE_ITO["reddish_purple"],
    "agent": OKABE_ITO["bluish_green"],
}

# Meaning, shared by every chart that says "good", "bad" or "neither".
GOOD: Final = OKABE_ITO["bluish_green"]
BAD: Final = OKABE_ITO["vermillion"]
NEUTRAL: Final = "#8A93A3"  # grey: a count without a verdict (all traffic, not AI)
MUTED: Final = "#C9CED6"
TEXT: Final = "#5B6474"  # labels and notes beside a mark
INK: Final = "#1D2433"  # a line drawn over coloured bars

# Identity of a claimed agent: verified is good, spoofed is bad, declared is unchecked (grey).
IDENTITY_COLOURS: Final = {
    "verified": GOOD,
    "declared": NEUTRAL,
    "spoofed": BAD,
    "undeclared": OKABE_ITO["yellow"],
    "none": MUTED,
}
# The second cue beside the colour: a symbol a reader can tell apart without the hue.
IDENTITY_MARKS: Final = {"verified": "✓", "declared": "?", "spoofed": "✗", "undeclared": "~", "none": ""}

# Status classes: ordered from fine to failing, darker as they get worse; 2xx and 5xx differ in
# lightness as well as hue, and the legend always names them.
STATUS_COLOURS: Final = {"2xx": "#9BC9E6", "3xx": "#C9CED6", "4xx": OKABE_ITO["orange"], "5xx": BAD}

# The kinds of AI-driven traffic: each kind in the colour of the class it belongs to, lightened
# where two kinds share a class (training and search crawlers are both crawlers).
AI_KIND_COLOURS: Final = {
    "training_crawlers": OKABE_ITO["orange"],
    "search_crawlers": "#F5C767",
    "assistant_fetchers": OKABE_ITO["reddish_purple"],
    "agents": OKABE_ITO["bluish_green"],
    "other_ai": NEUTRAL,
}
AI: Final = OKABE_ITO["sky_blue"]  # AI-driven, beside grey (NEUTRAL) for "not AI"

# Many categories (page types, operators): Okabe–Ito without black and yellow (too faint on white),
# then the same hues lightened; a chart with more categories than this groups the rest as "Other".
SERIES: Final = (
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["vermillion"],
    "#7FB8D8",
    "#F2CF80",
    "#80CEB9",
    "#E5BCD3",
    "#B0DAF4",
    "#EAAE80",
)

# Page types in three families of shades, so that 15 types never repeat a colour and the family
# still reads: pages people read (blues), pages where they act (oranges to vermillion: accounts,
# carts, payments) and what machines fetch (greens and greys).
PAGE_TYPE_COLOURS: Final = {
    "home": "#003F66",
    "product": OKABE_ITO["blue"],
    "listing": "#3C8DC4",
    "search": OKABE_ITO["sky_blue"],
    "content": "#A9D6F2",
    "account": "#F5C767",
    "auth": OKABE_ITO["orange"],
    "cart": "#E07B00",
    "checkout": OKABE_ITO["vermillion"],
    "api": "#005E45",
    "static": OKABE_ITO["bluish_green"],
    "robots": "#66C5AB",
    "sitemap": "#B3E2D5",
    "feed": OKABE_ITO["reddish_purple"],
    "other": MUTED,
}


def delta_colour(change: float | None, *, rise_is_bad: bool) -> str:
    """The colour of a change by what it means: for malicious traffic a rise is bad, for
    verified traffic a fall is; no change (or none known) is neutral."""
    if change is None or change == 0:
        return NEUTRAL
    return BAD if (change > 0) == rise_is_bad else GOOD


# Segments whose rise is bad news (the growth chart and the first screen's deltas).
RISE_IS_BAD: Final = frozenset({"malicious", "spoofed"})


def segment_colour(segment: str, change: float | None) -> str:
    """A growth bar's colour: malicious (and spoofed) red when rising, green when falling; a class
    in its own colour and the rest neutral, since more crawling is not in itself good or bad."""
    if segment in RISE_IS_BAD:
        return delta_colour(change, rise_is_bad=True)
    return CLASS_COLOURS.get(segment, AI if segment == "ai_driven" else NEUTRAL)


__all__ = [
    "AI",
    "AI_KIND_COLOURS",
    "BAD",
    "CLASS_COLOURS",
    "GOOD",
    "IDENTITY_COLOURS",
    "IDENTITY_MARKS",
    "MUTED",
    "NEUTRAL",
    "OKABE_ITO",
    "PAGE_TYPE_COLOURS",
    "RISE_IS_BAD",
    "SERIES",
    "STATUS_COLOURS",
    "TEXT",
    "INK",
    "delta_colour",
    "segment_colour",
]
