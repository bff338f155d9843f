"""Text to render: real prose with numbers mixed in, receipt lines and scene words.

Prose comes from the Debian fortune files (packages fortunes-min and fortunes),
scene words from the wamerican word list. Generated dates, amounts, phone numbers
and codes are mixed in so digits and punctuation are as common as on real pages.
All text is printable ASCII, which every face in fonts.FONTS covers.
"""

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError

__all__ = ["FORTUNE_DIR", "WORDS_FILE", "prose", "number_token", "paragraph", "receipt_lines", "scene_word"]

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDS_FILE = Path("/usr/share/dict/words")
# Collections that are mostly pictures, code or not English; the rest is prose.
_SKIP = {"ascii-art", "perl", "translate-me", "songs-poems"}
_ASCII = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "--", "\u2026": "..."}


def _require(path: Path, package: str) -> Path:
    if not path.exists():
        raise MissingDependencyError(f"{path}: not found; install it with `sudo apt-get install {package}`")
    return path


def _clean_fortune(fortune: str) -> str | None:
    """One fortune as a single line of ASCII prose, or None if it is not prose."""
    fortune = re.sub(r".\x08", "", fortune)  # overstriking (underline and bold by backspace)
    lines = []
    for line in fortune.splitlines():
        if re.match(r"\s*(--|-- |~~)", line):  # an attribution ends the prose
            break
        lines.append(line.strip())
    text = " ".join(" ".join(lines).split())
    for unicode, ascii_ in _ASCII.items():
        text = text.replace(unicode, ascii_)
    if not text or not text.isascii() or not text.isprintable():
        return None
    letters = sum(c.isalpha() for c in text)
    # ASCII pictures and code are mostly symbols; prose is mostly letters
    if letters < 0.7 * len(text.replace(" ", "")) or len(text.split()) < 3:
        return None
    return text


@lru_cache(maxsize=1)
def prose() -> tuple[str, ...]:
    """Every prose fortune, one line each."""
    _require(FORTUNE_DIR / "fortunes", "fortunes-min")
    fortunes = []
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.suffix or not path.is_file() or path.name in _SKIP:
            continue
        for fortune in path.read_text(encoding="latin-1").split("\n%\n"):
            if (text := _clean_fortune(fortune)) is not None:
                fortunes.append(text)
    return tuple(fortunes)


@lru_cache(maxsize=1)
def _dictionary() -> tuple[str, ...]:
    words = _require(WORDS_FILE, "wamerican").read_text(encoding="utf-8", errors="ignore").split()
    return tuple(w for w in words if w.isascii() and w.isalpha() and 2 <= len(w) <= 12)


_MONTHS = "January February March April May June July August September October November December".split()
_PREFIXES = "INV REF ORD PO SN ID NO TX AC".split()


def _pick(rng: np.random.Generator, items):
    return items[rng.integers(len(items))]


def number_token(rng: np.random.Generator) -> str:
    """A date, time, amount, phone number, code, percentage or plain number."""
    y, m, d = int(rng.integers(1950, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    amount = float(np.exp(rng.uniform(0, 9)))
    choice = rng.integers(12)
    if choice == 0:
        return f"{y}-{m:02d}-{d:02d}"
    if choice == 1:
        return f"{d:02d}/{m:02d}/{y}" if rng.random() < 0.5 else f"{m}/{d}/{y % 100:02d}"
    if choice == 2:
        return f"{d} {_MONTHS[m - 1][:3 if rng.random() < 0.5 else None]} {y}"
    if choice == 3:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    if choice == 4:
        return f"${amount:,.2f}"
    if choice == 5:
        return f"{amount:,.2f}"
    if choice == 6:
        return f"({rng.integers(200, 999)}) {rng.integers(200, 999)}-{rng.integers(0, 10000):04d}"
    if choice == 7:
        return f"+{rng.integers(1, 99)} {rng.integers(10, 99)} {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}"
    if choice == 8:
        suffix = f"/{chr(65 + rng.integers(26))}" if rng.random() < 0.3 else ""
        return f"{_pick(rng, _PREFIXES)}-{rng.integers(100, 99999)}{suffix}"
    if choice == 9:
        return f"{rng.uniform(0, 100):.{rng.integers(0, 2)}f}%"
    if choice == 10:
        return f"No. {rng.integers(1, 999)}"
    return str(int(rng.integers(0, 10 ** rng.integers(1, 6))))


def paragraph(rng: np.random.Generator, n_words: int, numbers: float = 0.05) -> list[str]:
    """About `n_words` consecutive prose words, with a `numbers` share of number tokens mixed in."""
    fortunes = prose()
    words: list[str] = []
    start = int(rng.integers(len(fortunes)))
    while len(words) < n_words:
        for word in fortunes[start % len(fortunes)].split():
            words.append(number_token(rng) if rng.random() < numbers else word)
        start += 1
    first = int(rng.integers(0, max(1, len(words) - n_words)))
    return words[first:first + n_words]


_ITEMS = """BREAD MILK EGGS BUTTER CHEESE APPLES BANANAS RICE PASTA COFFEE TEA SUGAR FLOUR
    CHICKEN BEEF FISH SALMON TUNA YOGURT CEREAL JUICE WATER SODA BEER WINE CHIPS COOKIES
    TOMATO ONION GARLIC POTATO CARROT LETTUCE PEPPER SALT OIL VINEGAR SOAP SHAMPOO TISSUE
    BATTERY CHARGER CABLE NOTEBOOK PEN TAPE GLUE NOODLES SAUCE SOUP BISCUIT CAKE DONUT
    BURGER FRIES PIZZA SALAD LATTE MOCHA SANDWICH WRAP TOAST MUFFIN ORANGE LEMON MANGO
    GRAPES DETERGENT SPONGE BAG NAPKIN PLATE CUP SPOON FORK KNIFE LIGHTER CANDLE""".split()
_ITEM_WORDS = "FRESH ORGANIC LARGE SMALL MINI PACK 2L 500G 1KG 6PK DIET LOW FAT WHOLE SLICED ICED HOT".split()
_STORES = "MART STORE MARKET SUPERMARKET CAFE BAKERY KITCHEN TRADING HARDWARE PHARMACY DELI".split()
_STREETS = "MAIN HIGH PARK OAK PINE MAPLE CEDAR ELM LAKE HILL CHURCH MARKET STATION".split()


def _receipt_item(rng: np.random.Generator) -> tuple[str, str]:
    name = _pick(rng, _ITEMS).capitalize()
    if rng.random() < 0.5:
        name = f"{_pick(rng, _ITEM_WORDS).capitalize()} {name}"
    if rng.random() < 0.15:
        name = f"{name} {_pick(rng, _dictionary()).capitalize()}"
    qty, price = int(rng.integers(1, 6)), round(float(np.exp(rng.uniform(-0.5, 4))), 2)
    if qty > 1 and rng.random() < 0.6:
        name = f"{name} {qty} x {price:.2f}" if rng.random() < 0.5 else f"{qty} {name}"
    return name, f"{qty * price:.2f}"


def receipt_lines(rng: np.random.Generator, n_lines: int) -> list[tuple[str, str]]:
    """`n_lines` consecutive lines of a receipt as (left, right) parts; right is '' for unsplit lines.

    A receipt runs header (store, address, numbers, date), items, then totals and
    a closing line; a window of it is returned so that every part shows up. Most
    receipts print in capitals, some in mixed case.
    """
    word = lambda: _pick(rng, _dictionary()).capitalize()
    digits = lambda n: "".join(str(d) for d in rng.integers(0, 10, n))
    total = float(np.exp(rng.uniform(1, 6)))
    date = f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(2015, 2031)}"
    time = f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"
    header = [
        (f"{word()} {_pick(rng, _STORES).capitalize()}", ""),
        (f"({digits(6)}-{chr(65 + rng.integers(26))})", ""),
        (f"{rng.integers(1, 999)} {_pick(rng, _STREETS).capitalize()} St, {word()}", ""),
        (_pick(rng, ["Tel", "Phone", "Tel No."]) + f" {rng.integers(200, 999)}-{rng.integers(200, 999)}-{digits(4)}", ""),
        (_pick(rng, ["GST ID", "GST Reg No", "VAT No", "ABN"]) + f" : {digits(12)}", ""),
        (_pick(rng, ["Tax Invoice", "Receipt", "Cash Sale", "Simplified Tax Invoice"]), ""),
        (f"Date: {date}", f"Time: {time}") if rng.random() < 0.5 else (f"Date {date}", time),
        (_pick(rng, ["Invoice No", "Receipt #", "Bill No", "Doc No"]) + f" : {_pick(rng, _PREFIXES)}{digits(6)}", ""),
        ("Cashier : " + word(), ""),
        (_pick(rng, ["Item", "Description", "Qty Item"]), _pick(rng, ["Amount", "Price", "RM", "Total"])),
    ]
    items = [_receipt_item(rng) for _ in range(max(n_lines, 3))]
    footer = [
        (_pick(rng, ["Subtotal", "Sub Total", "Total Excl. GST"]), f"{total:.2f}"),
        (f"{_pick(rng, ['Tax', 'GST', 'VAT', 'SR @'])} {rng.integers(5, 21)}%", f"{total * 0.1:.2f}"),
        ("Rounding Adj", f"{rng.integers(-2, 3) / 100:.2f}"),
        (_pick(rng, ["Total", "Total RM", "Total Incl. GST", "Amount Due"]), f"{total * 1.1:.2f}"),
        ("Cash" if rng.random() < 0.5 else f"Card ****{digits(4)}", f"{total * 1.2:.2f}"),
        (_pick(rng, ["Change", "Change Due"]), f"{total * 0.1:.2f}"),
        (_pick(rng, ["Thank you!", "Please come again.", "Thank you for shopping", "Goods sold are not returnable",
                     "Keep the invoice for applicable returns", "Have a nice day"]), ""),
    ]
    lines = header + items + footer
    start = int(rng.integers(0, len(lines) - n_lines + 1))
    lines = lines[start:start + n_lines]
    if rng.random() < 0.6:
        return [(left.upper(), right.upper()) for left, right in lines]
    return lines


def scene_word(rng: np.random.Generator) -> str:
    """A word as on a sign or a label: dictionary or prose words, sometimes numbers, in varied case."""
    r = rng.random()
    if r < 0.1:
        word = number_token(rng) if rng.random() < 0.5 else str(rng.integers(1, 1000))
    elif r < 0.6:
        word = _pick(rng, _dictionary())
    else:
        word = re.sub(r"[^A-Za-z0-9'&-]", "", _pick(rng, _pick(rng, prose()).split()))
        if not any(c.isalnum() for c in word):
            word = "OPEN"
    case = rng.random()
    if case < 0.45:
        return word.upper()
    if case < 0.8:
        return word.capitalize()
    return word.lower()
