"""Labelled synthetic traffic: an access log in a common format, and the truth for every line.

`simulate()` writes a site's log for a number of days (people of many kinds, AI crawlers and
assistants, search engines, SEO bots, monitors, tools, scrapers, agentic browsers, headless
automation, spoofed crawlers, vulnerability scanners, credential stuffing, card testing, fake
sign-ups, paced crawlers, and browser bots that sleep a random while between pages to pass for
visitors) and, beside it, `<log>.truth.parquet`: one row per log line with the labels a perfect
classifier would give (DESIGN.md, "Label vocabulary"). It can also write the IP range files that
the declared bots' addresses were drawn from, in the operators' own JSON shape, so verification
can be tested offline.

Clients come in families (`FAMILIES`, the truth's `family` column): kinds of people whose
parameters are drawn per visit or per person from ranges measured in published web-usage studies
(`families`: linear readers, tab openers, back-button users, search-driven visitors, returning
shoppers, phones with a warm cache, fast skimmers, slow readers, offices behind one proxy, phones
behind a carrier's NAT, app users, visitors from AI answers), and kinds of bots (every other
scenario). `families=` chooses which run (to leave one out, or to make a log of one); the site's
layout (`site_layout=`: origin, cdn, spa) is independent of them: a CDN answers every asset
request, a single-page app loads one document and then calls its API for each screen.

How the labels are meant:
- `identity`: declared agents whose operator publishes ranges come from those ranges (`verified`);
  other declared agents and tools are `declared`; a known agent's user agent from elsewhere is
  `spoofed`; automation behind a browser user agent is `undeclared`; humans are `none`.
- `agent` is the agent the user agent names (for a spoofed client, the agent it claims, with no
  operator); agentic browsers run from OpenAI's addresses are "ChatGPT agent" with operator OpenAI.
- `session` is the true visit (a human's visit, a crawl burst, a scraping sweep, an attacker's run).
- `user_agent` is the one the client sent. W3C logs write spaces as `+`, so a user agent holding a
  literal `+` reads back with a space there; compare on `line_no`, not on the user agent.

Generation is vectorised: each scenario builds its requests for a day as numpy arrays (per-session
attributes expanded to requests with `np.repeat` and cumulative sums), and lines are rendered with
polars string expressions in slices, one day at a time, so memory stays bounded at any volume.

Where things are: `run` (the entry point, a day at a time), `sim` (the state: site, user agents,
fleets, label profiles), `families` (the kinds of people with their parameters and sources, and
the kinds of bots), `scenarios/` (one function per scenario, by kind, and the registry a new one
is added to), `browse` (a visit's pages, tabs, steps back, assets, API calls and pace), `site`
(paths, roles and their responses, per site kind and layout), `agents` (user agents and declared
agents), `addresses` (address pools and the operators' published ranges), `rows` (the request
columns and vectorised building blocks), `output` (log formats, the truth file).
"""

from __future__ import annotations

from trafficlens.simulate.families import BOT_FAMILIES, FAMILIES, HUMAN_FAMILIES, select_families
from trafficlens.simulate.output import FORMATS, TRUTH_SCHEMA
from trafficlens.simulate.run import SimulateSummary, simulate
from trafficlens.simulate.scenarios import FAMILY_OF, OPT_IN, SCENARIOS
from trafficlens.simulate.site import SITE_KINDS

__all__ = [
    "BOT_FAMILIES",
    "FAMILIES",
    "FAMILY_OF",
    "FORMATS",
    "HUMAN_FAMILIES",
    "OPT_IN",
    "SCENARIOS",
    "SITE_KINDS",
    "TRUTH_SCHEMA",
    "SimulateSummary",
    "select_families",
    "simulate",
]
