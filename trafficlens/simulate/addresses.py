"""Where simulated clients come from: address spaces to draw from (hosting, cloud, residential,
botnets, each declared agent's own prefixes), and the range files those operators publish, written
in their own JSON shape so verification can be tested offline.

A new declared bot's prefixes go in `AGENT_PREFIXES`, with the file name its operator publishes
(none: its clients are `declared`, not `verified`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Drawn addresses: (high 64 bits, low 64 bits, is IPv6), each an array with one entry per address.
Addresses = tuple[np.ndarray, ...]


class Space:
    """Prefixes to draw addresses from (IPv4 and IPv6), each address as (hi, lo, is6)."""

    def __init__(self, prefixes: Sequence[str], weights: Sequence[float] | None = None) -> None:
        nets = [ipaddress.ip_network(p) for p in prefixes]
        self.is6 = np.array([n.version == 6 for n in nets])
        base = [int(n.network_address) for n in nets]
        self.hi = np.array([(b >> 64) if n.version == 6 else 0 for b, n in zip(base, nets)], dtype=np.uint64)
        self.lo = np.array([b & (2**64 - 1) for b in base], dtype=np.uint64)
        self.bits = np.array([n.max_prefixlen - n.prefixlen for n in nets], dtype=np.int64)
        w = np.ones(len(nets)) if weights is None else np.asarray(weights, dtype=float)
        self.p = w / w.sum()

    def sample(self, rng: np.random.Generator, n: int) -> Addresses:
        k = rng.choice(len(self.p), size=n, p=self.p)
        bits, six = self.bits[k], self.is6[k]
        hi, lo = self.hi[k].copy(), self.lo[k].copy()
        # IPv4 and IPv6 prefixes longer than /64: random host bits in the low word.
        low_bits = np.where(six, np.minimum(bits, 64), bits)
        size = np.exp2(np.minimum(low_bits, 52))
        host = np.floor(rng.random(n) * size).astype(np.uint64)
        v4big = ~six & (bits >= 8)
        last = host & np.uint64(0xFF)
        host = np.where(v4big & (last == 0), host + np.uint64(1), host)  # no .0 or .255 hosts
        host = np.where(v4big & (last == 255), host - np.uint64(1), host)
        wide6 = six & (bits >= 64)
        odd = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
        lo = np.where(wide6, odd, lo + host)
        hi_bits = np.clip(bits - 64, 0, 52)
        hi = np.where(wide6, hi + np.floor(rng.random(n) * np.exp2(hi_bits)).astype(np.uint64), hi)
        return hi, lo, six


def take(addrs: Addresses, idx: np.ndarray) -> Addresses:
    """The addresses at `idx`."""
    return addrs[0][idx], addrs[1][idx], addrs[2][idx]


# Ranges the operators publish (their own file names); prefixes they publish where known, else
# plausible ones inside the operator's network. Each agent draws from its own prefixes.
AGENT_PREFIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "GPTBot": (
        "gptbot.json",
        ("20.171.206.0/24", "20.171.207.0/24", "52.230.152.0/24", "4.227.36.0/25", "20.125.66.80/28"),
    ),
    "OAI-SearchBot": (
        "searchbot.json",
        ("20.42.10.176/28", "172.203.190.128/28", "104.210.140.128/28", "51.8.102.0/24"),
    ),
    "ChatGPT-User": (
        "chatgpt-user.json",
        (
            "23.98.142.176/28",
            "40.84.180.224/28",
            "13.65.240.240/28",
            "20.97.189.96/28",
            "20.161.75.208/28",
            "52.225.75.208/28",
            "52.156.77.144/28",
            "40.84.221.208/28",
        ),
    ),
    "ChatGPT agent": ("chatgpt-user.json", ("172.183.222.128/28", "51.8.155.64/28")),
    "ClaudeBot": ("bots.json", ("216.73.216.0/23",)),
    "Claude-SearchBot": ("bots.json", ("216.73.218.0/24",)),
    "Claude-User": ("bots.json", ("160.79.104.0/23",)),
    "PerplexityBot": (
        "perplexitybot.json",
        (
            "107.20.236.150/32",
            "3.224.62.45/32",
            "18.210.92.235/32",
            "3.222.232.239/32",
            "3.211.124.183/32",
            "3.231.139.107/32",
            "18.97.1.228/30",
            "18.97.9.96/29",
        ),
    ),
    "Perplexity-User": (
        "perplexity-user.json",
        ("44.208.221.197/32", "34.193.163.52/32", "18.97.21.0/30", "18.97.43.80/29"),
    ),
    "MistralAI-User": ("mistralai-user-ips.json", ("51.159.112.0/25",)),
    "CCBot": ("ccbot.json", ("18.97.9.168/29", "18.97.14.80/29", "18.97.14.88/30", "98.85.178.216/32")),
    "Googlebot": (
        "common-crawlers.json",
        tuple(f"66.249.{b}.0/27" for b in range(64, 80)) + ("66.249.66.160/27", "66.249.66.192/27", "66.249.68.32/27"),
    ),
    "bingbot": (
        "bingbot.json",
        ("157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24", "52.167.144.0/24", "13.66.139.0/24"),
    ),
    "Applebot": ("applebot.json", ("17.241.208.160/27", "17.241.193.160/27", "17.241.219.0/24", "17.22.237.0/24")),
    "DuckDuckBot": (
        "duckduckbot.json",
        (
            "20.191.45.212/32",
            "40.88.21.235/32",
            "40.76.173.151/32",
            "40.76.163.7/32",
            "20.185.79.47/32",
            "52.142.26.175/32",
            "20.185.79.15/32",
            "52.142.24.149/32",
            "40.76.162.208/32",
            "40.76.163.23/32",
            "40.76.162.191/32",
            "40.76.162.247/32",
        ),
    ),
    # No published ranges: these agents are `declared`.
    "Bytespider": ("", ("47.128.16.0/20", "47.128.96.0/20")),
    "meta-externalagent": ("", ("57.141.0.0/24", "57.141.2.0/24", "57.141.4.0/24")),
    "Amazonbot": ("", ("52.70.240.0/24", "3.224.220.0/24")),
    "YandexBot": ("", ("5.255.231.0/24", "213.180.203.0/24", "87.250.224.0/24")),
    "AhrefsBot": ("", ("54.36.148.0/23", "51.222.253.0/24")),
    "SemrushBot": ("", ("185.191.171.0/24", "85.208.96.0/24")),
    "MJ12bot": ("", ("144.76.118.0/24", "5.9.143.0/24")),
    "DotBot": ("", ("216.244.66.0/24",)),
    "UptimeRobot": ("", ("69.162.124.224/28", "63.143.42.240/28", "216.144.250.150/32", "208.115.199.16/28")),
    "Pingdom": ("", ("5.172.196.188/32", "185.180.12.64/28", "178.255.152.0/28", "94.75.211.64/28")),
}
# Prefixes that are in the published files without the simulator drawing from them.
EXTRA_PUBLISHED: dict[str, tuple[str, ...]] = {
    "common-crawlers.json": ("2001:4860:4801:10::/64", "2001:4860:4801:12::/64", "2001:4860:4801:2::/64"),
    "bingbot.json": ("40.77.188.0/22",),
}

# Hosting providers (datacentre addresses) and residential networks, none inside any range above.
HOSTING_16 = (
    "159.89.0.0/16",
    "167.99.0.0/16",
    "134.209.0.0/16",
    "64.227.0.0/16",
    "143.198.0.0/16",  # DigitalOcean
    "95.216.0.0/16",
    "65.108.0.0/16",
    "88.198.0.0/16",
    "49.12.0.0/16",  # Hetzner
    "51.68.0.0/16",
    "51.77.0.0/16",
    "141.94.0.0/16",  # OVH
    "45.32.0.0/16",
    "149.28.0.0/16",  # Vultr
    "172.104.0.0/16",
    "172.105.0.0/16",  # Linode
    "47.74.0.0/16",
    "43.128.0.0/16",  # Alibaba, Tencent
)
CLOUD = ("3.80.0.0/12", "54.160.0.0/12", "34.16.0.0/12", "35.192.0.0/12", "4.150.0.0/15", "40.112.0.0/14")
RESIDENTIAL = (
    "73.0.0.0/8",
    "24.0.0.0/12",
    "98.192.0.0/10",
    "71.160.0.0/11",
    "99.0.0.0/10",
    "172.56.0.0/13",  # US
    "79.192.0.0/10",
    "87.128.0.0/10",
    "91.0.0.0/10",  # Deutsche Telekom
    "90.0.0.0/9",
    "86.128.0.0/11",
    "82.0.0.0/14",
    "2.96.0.0/13",  # Orange, BT, Virgin, Sky
    "83.32.0.0/11",
    "93.32.0.0/12",
    "62.98.0.0/15",  # Telefonica, Fastweb, Wind
)
RESIDENTIAL_W = (10, 4, 6, 4, 4, 3, 4, 3, 3, 5, 3, 2, 2, 2, 2, 1)
# Mobile carriers' addresses, behind which carrier-grade NAT puts many phones [Ric16a, Liv18].
CELLULAR = (
    "172.56.0.0/13",  # T-Mobile US
    "174.192.0.0/10",  # Verizon Wireless
    "107.64.0.0/10",  # AT&T Mobility
    "80.187.0.0/16",  # Telekom Deutschland mobile
    "92.184.0.0/14",  # Orange France mobile
    "31.94.0.0/16",  # EE (UK)
)
RESIDENTIAL6 = ("2601::/20", "2a01:cb00::/24", "2003::/19", "2607:fb90::/32", "2a02:c7c::/32")
BOTNET = RESIDENTIAL + (
    "177.0.0.0/10",
    "189.0.0.0/11",
    "49.32.0.0/11",
    "113.160.0.0/11",
    "36.64.0.0/11",
    "41.96.0.0/12",
    "186.0.0.0/11",
    "14.160.0.0/11",
)


def published_ranges() -> dict[str, list[str]]:
    """Published range files -> the prefixes in them (those drawn from, and a few more)."""
    out: dict[str, list[str]] = {}
    for file, prefixes in AGENT_PREFIXES.values():
        if file:
            out.setdefault(file, []).extend(str(ipaddress.ip_network(p)) for p in prefixes)
    for file, prefixes in EXTRA_PUBLISHED.items():
        out.setdefault(file, []).extend(prefixes)
    return out


# Providers that publish their address space, in the shapes they publish it (file names as
# trafficlens/catalogues/hosting_sources.yml keeps them); the others (Hetzner, OVH, Alibaba,
# Tencent) publish none, and their addresses go unattributed, as on a real log.
HOSTING_PUBLISHED: dict[str, tuple[str, ...]] = {
    "aws-ip-ranges.json": ("3.80.0.0/12", "54.160.0.0/12"),
    "google-cloud.json": ("34.16.0.0/12", "35.192.0.0/12"),
    "azure-service-tags.json": ("4.150.0.0/15", "40.112.0.0/14"),
    "digitalocean-geofeed.csv": ("159.89.0.0/16", "167.99.0.0/16", "134.209.0.0/16", "64.227.0.0/16", "143.198.0.0/16"),
    "linode-geofeed.csv": ("172.104.0.0/16", "172.105.0.0/16"),
    "vultr-geofeed.csv": ("45.32.0.0/16", "149.28.0.0/16"),
}


def write_hosting(folder: str | Path, created: dt.date) -> list[Path]:
    """The hosting providers' range files for the simulated address space, each in its
    provider's published format."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stamp = created.isoformat()
    docs: dict[str, str] = {}
    for file, nets in HOSTING_PUBLISHED.items():
        if file.startswith("aws"):
            rows = [{"ip_prefix": p, "region": "us-east-1", "service": "EC2"} for p in nets]
            docs[file] = json.dumps({"syncToken": "0", "createDate": f"{stamp}-00-00-00", "prefixes": rows})
        elif file.startswith("google"):
            rows = [{"ipv4Prefix": p, "service": "Google Cloud", "scope": "us-central1"} for p in nets]
            docs[file] = json.dumps({"creationTime": f"{stamp}T00:00:00", "prefixes": rows})
        elif file.startswith("azure"):
            tag = {"name": "AzureCloud.eastus", "properties": {"region": "eastus", "addressPrefixes": list(nets)}}
            docs[file] = json.dumps({"changeNumber": 1, "cloud": "Public", "values": [tag]})
        else:  # RFC 8805 geofeed
            docs[file] = "".join(f"{p},US,US-NY,New York,\n" for p in nets)
    for file, text in docs.items():
        (out / file).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
    return [out / f for f in docs]


def write_ranges(folder: str | Path, prefixes: dict[str, list[str]], created: dt.date) -> list[Path]:
    """Range files in the operators' JSON shape, one per published file name."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file, nets in sorted(prefixes.items()):
        entries = [{"ipv6Prefix" if ":" in p else "ipv4Prefix": p} for p in dict.fromkeys(nets)]
        doc = {"creationTime": f"{created.isoformat()}T00:00:00.000000", "prefixes": entries}
        (out / file).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        written.append(out / file)
    return written
