"""A deterministic seeded store: catalog, customers, stock and orders, in no vendor's shape.

Every sandbox renders this one store, so the same SKUs and customers appear on every
channel. Amounts on orders are decimal strings exactly as a channel would send them;
that is how a `malformed` order can carry an amount that is not a number.

Some open orders are "tricky": each is tagged with the one contract reason code it
should trigger (`Order.reason`), so tests can compare what Clerk decided with what the
store meant.
"""

from __future__ import annotations

import gc
import hashlib
import random
import threading
import unicodedata
from bisect import bisect, bisect_left, insort
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from domain.orders import NO_POSTAL_CODE, Lifecycle, Risk
from domain.reasons import ALL_REASONS, Hold, Quarantine

DEFAULT_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOME_COUNTRY = "US"

# ISO 4217 withdrew these; Shopify's CurrencyCode enum still lists them.
RETIRED_CURRENCIES = ("BYR", "HRK", "LTL", "LVL", "STD", "VEF")

ORDER_ID_BASE = 5_100_000_000
LINE_ID_BASE = 13_200_000_000
CUSTOMER_ID_BASE = 7_400_000_000
PRODUCT_ID_BASE = 8_800_000_000
VARIANT_ID_BASE = 44_000_000_000


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; `country` is ISO 3166-1 alpha-2."""

    first_name: str | None
    last_name: str | None
    company: str | None
    street1: str | None
    street2: str | None
    city: str | None
    province: str | None
    province_code: str | None
    postal_code: str | None
    country: str
    phone: str | None

    @property
    def name(self) -> str | None:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or None


@dataclass(slots=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    addresses: tuple[Address, ...]


@dataclass(slots=True)
class Variant:
    id: int
    product_id: int
    sku: str
    title: str
    product_title: str
    price: Decimal
    cost: Decimal
    barcode: str | None
    weight_grams: int
    category: str
    supplier: str
    lead_time_days: int
    moq: int
    pack_size: int
    requires_shipping: bool
    updated_at: datetime


@dataclass(slots=True)
class Product:
    id: int
    title: str
    handle: str
    category: str
    supplier: str
    status: str  # active | archived | draft
    updated_at: datetime
    variants: list[Variant] = field(default_factory=list)


@dataclass(slots=True)
class Line:
    """One order line; money as decimal strings, `discount` for all units together."""

    id: int
    variant_id: int | None
    sku: str | None
    title: str
    variant_title: str | None
    quantity: int
    unit_price: str
    discount: str
    requires_shipping: bool


@dataclass(slots=True)
class Order:
    """An order as the channel holds it; money as decimal strings in `currency`.

    `total = sum(unit_price * quantity) - discounts + shipping (+ tax unless
    taxes_included)`, except where a tricky order's `reason` says otherwise.
    """

    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    processed_at: datetime
    lifecycle: Lifecycle
    currency: str
    lines: list[Line]
    subtotal: str  # lines after discounts, before shipping and tax
    shipping: str
    tax: str
    discounts: str
    total: str
    taxes_included: bool
    requires_shipping: bool
    ship_to: Address | None
    customer: Customer | None
    email: str | None
    phone: str | None
    risk: Risk
    discount_percent: int
    tax_basis_points: int
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    reason: str | None = None
    channel: str = "shopify"  # the storefront the order was placed on


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """What to generate; the same spec always gives the same store."""

    seed: int = 7
    orders: int = 2000
    products: int = 60
    customers: int = 800
    tricky_share: float = 0.1
    now: datetime | None = None
    currency: str = "USD"
    days: int = 90
    huge_orders: int = 3
    # Storefronts selling from this one warehouse; orders are dealt out among them in
    # turn and every channel gets a tricky order for every reason code.
    channels: tuple[str, ...] = ("shopify",)

    @property
    def clock(self) -> datetime:
        return (self.now or DEFAULT_NOW).astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    weight: int
    calling: str
    phone_digits: int
    tax_basis_points: int
    taxes_included: bool
    postal: str | None  # '#' a digit, 'A' a capital letter
    street: str  # template over {n} and {s}
    streets: tuple[str, ...]
    places: tuple[tuple[str, str | None, str | None], ...]  # city, province, province code
    first: tuple[str, ...]
    last: tuple[str, ...]


_COUNTRIES = (
    _Country("US", 34, "+1", 10, 725, False, "#####", "{n} {s}",
             ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd"),
             (("New York", "New York", "NY"), ("Portland", "Oregon", "OR"), ("Austin", "Texas", "TX"),
              ("Chicago", "Illinois", "IL"), ("San Francisco", "California", "CA"),
              ("Miami", "Florida", "FL"), ("Seattle", "Washington", "WA")),
             ("James", "Mary", "Olivia", "Liam", "Sophia", "Noah", "Zoë", "José", "Chloé", "Ava"),
             ("Smith", "Johnson", "Garcia", "Nguyễn", "O'Brien", "Martinez", "Lee", "Brown", "Wilson")),
    _Country("CA", 8, "+1", 10, 1300, False, "A#A #A#", "{n} {s}",
             ("Rue Saint-Denis", "King St W", "Granville St", "Rue Sainte-Catherine"),
             (("Montréal", "Quebec", "QC"), ("Toronto", "Ontario", "ON"),
              ("Vancouver", "British Columbia", "BC"), ("Calgary", "Alberta", "AB")),
             ("Émilie", "Gabriel", "Léa", "William", "Félix", "Olivia"),
             ("Tremblay", "Gagnon", "Côté", "Bouchard", "MacDonald", "Roy")),
    _Country("GB", 8, "+44", 10, 2000, True, "AA# #AA", "{n} {s}",
             ("High Street", "Church Lane", "Station Road", "Victoria Road"),
             (("London", None, None), ("Manchester", None, None), ("Edinburgh", None, None)),
             ("Oliver", "Amelia", "Harry", "Isla", "George", "Siân"),
             ("Taylor", "Jones", "Davies", "Evans", "Ó Súilleabháin", "Williams")),
    _Country("DE", 8, "+49", 10, 1900, True, "#####", "{s} {n}",
             ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Gartenweg", "Königsallee"),
             (("Berlin", None, None), ("München", None, None), ("Köln", None, None),
              ("Düsseldorf", None, None)),
             ("Jürgen", "Björn", "Lena", "Lukas", "Sophie", "Jörg"),
             ("Müller", "Schäfer", "Weiß", "Köhler", "Schröder", "Groß")),
    _Country("FR", 6, "+33", 9, 2000, True, "#####", "{n} {s}",
             ("rue de la Paix", "avenue Victor Hugo", "rue des Écoles", "boulevard Saint-Germain"),
             (("Paris", None, None), ("Lyon", None, None), ("Besançon", None, None),
              ("Orléans", None, None)),
             ("Hélène", "François", "Chloé", "Théo", "Zoé", "Jérôme"),
             ("Lefèvre", "Dubois", "Moreau", "Girard", "Lemaître", "Bélanger")),
    _Country("JP", 6, "+81", 10, 1000, True, "###-####", "{s}{n}-1",
             ("千代田", "丸の内", "梅田", "祇園町"),
             (("千代田区", "東京都", "JP-13"), ("大阪市", "大阪府", "JP-27"), ("京都市", "京都府", "JP-26"),
              ("札幌市", "北海道", "JP-01")),
             ("太郎", "花子", "翔太", "さくら", "陽向", "結衣"),
             ("山田", "佐藤", "鈴木", "高橋", "田中", "渡辺")),
    _Country("HK", 4, "+852", 8, 0, False, None, "{n} {s}",
             ("Queen's Road Central", "Nathan Road", "彌敦道", "Hennessy Road"),
             (("中環", "Hong Kong Island", "HK"), ("Mong Kok", "Kowloon", "KL"),
              ("Sha Tin", "New Territories", "NT")),
             ("大文", "美玲", "志明", "Wing Yan", "Ka Ho", "嘉欣"),
             ("陳", "李", "黃", "Chan", "Wong", "張")),
    _Country("AU", 5, "+61", 9, 1000, True, "####", "{n} {s}",
             ("George Street", "Collins Street", "Queen Street", "Murray Street"),
             (("Sydney", "New South Wales", "NSW"), ("Melbourne", "Victoria", "VIC"),
              ("Brisbane", "Queensland", "QLD")),
             ("Jack", "Charlotte", "Mia", "Lachlan", "Matilda", "Chloe"),
             ("Smith", "Nguyen", "Kelly", "Murphy", "Wilson", "Williams")),
    _Country("BR", 4, "+55", 11, 1700, False, "#####-###", "{s}, {n}",
             ("Rua Augusta", "Rua das Flores", "Avenida São João", "Rua da Conceição"),
             (("São Paulo", "São Paulo", "SP"), ("Rio de Janeiro", "Rio de Janeiro", "RJ"),
              ("Belo Horizonte", "Minas Gerais", "MG")),
             ("João", "Maria", "Conceição", "Luís", "Ana", "Gonçalo"),
             ("Silva", "Santos", "Araújo", "Gonçalves", "Simões", "Assunção")),
    _Country("ES", 3, "+34", 9, 2100, True, "#####", "{s} {n}",
             ("Calle Mayor", "Calle de Alcalá", "Calle de Núñez de Balboa", "Passeig de Gràcia"),
             (("Madrid", "Madrid", "M"), ("Barcelona", "Barcelona", "B"), ("A Coruña", "A Coruña", "C")),
             ("José", "María", "Begoña", "Íñigo", "Lucía", "Martín"),
             ("Núñez", "García", "Fernández", "Muñoz", "Peña", "Ibáñez")),
    _Country("SE", 3, "+46", 9, 2500, True, "### ##", "{s} {n}",
             ("Drottninggatan", "Sveavägen", "Götgatan", "Storgatan"),
             (("Stockholm", None, None), ("Göteborg", None, None), ("Malmö", None, None)),
             ("Åsa", "Björn", "Märta", "Östen", "Linnéa", "Lars"),
             ("Ångström", "Öberg", "Lindqvist", "Björk", "Åkesson", "Söderberg")),
    _Country("AE", 2, "+971", 9, 500, False, None, "{n} {s}",
             ("Sheikh Zayed Road", "Al Wasl Road", "شارع الشيخ زايد"),
             (("Dubai", "Dubai", "DU"), ("Abu Dhabi", "Abu Dhabi", "AZ")),
             ("محمد", "فاطمة", "Omar", "Aisha", "Khalid", "Layla"),
             ("Al Mansouri", "Al Hashimi", "Haddad", "النعيمي", "Khoury", "Al Suwaidi")),
    _Country("IE", 2, "+353", 9, 2300, True, "A## A#A#", "{n} {s}",
             ("O'Connell Street", "Grafton Street", "Shop Street"),
             (("Dublin", "Dublin", "D"), ("Cork", "Cork", "CO"), ("Galway", "Galway", "G")),
             ("Aoife", "Seán", "Niamh", "Oisín", "Siobhán", "Ciarán"),
             ("Murphy", "Ó Briain", "Kelly", "Byrne", "Ní Bhriain", "Mac Giolla Íosa")),
    _Country("KR", 2, "+82", 10, 1000, True, "#####", "{s} {n}",
             ("세종대로", "테헤란로", "해운대로"),
             (("서울", "Seoul", "KR-11"), ("부산", "Busan", "KR-26")),
             ("민준", "서연", "지호", "하은", "도윤", "지우"),
             ("김", "이", "박", "최", "정", "강")),
)
COUNTRY_CODES = tuple(c.code for c in _COUNTRIES)
_COUNTRY = {c.code: c for c in _COUNTRIES}

_EMOJI = ("🌸", "🚀", "🐉", "✨", "🍀", "👩‍💻")
_COMPANIES = ("Bäckerei Schmidt GmbH", "Acme Corp", "株式会社みどり", "Café Olé 🥐", "Nordlys AB",
              "O'Reilly & Sons", "Zürich Design Studio")
_DOMAINS = ("example.com", "example.net", "example.org")

# (category, SKU prefix, product titles, variant options, price range in cents, weight range)
_CATEGORIES = (
    ("Apparel", "APP", ("Merino Sweater", "Linen Shirt", "Wool Beanie", "Straße Hoodie", "Rain Jacket"),
     ("S", "M", "L", "XL"), (1900, 12900), (150, 900)),
    ("Footwear", "FTW", ("Trail Runner", "Canvas Sneaker", "Leather Boot", "Espadrille"),
     ("38", "40", "42", "44"), (4900, 18900), (600, 1400)),
    ("Home", "HOM", ("Café Crème Mug", "Linen Throw", "Kyōto Tea Set", "Ceramic Vase", "Scented Candle"),
     ("Sand", "Sage", "Slate"), (1200, 8900), (200, 2500)),
    ("Kitchen", "KIT", ("Chef's Knife", "Cast Iron Pan", "Bamboo Board", "Pour-Over Kettle"),
     ("Standard",), (1500, 14900), (300, 3500)),
    ("Outdoor", "OUT", ("Trekking Pole", "Camp Stove", "Dry Bag", "Hammock"),
     ("Red", "Blue", "Olive"), (1900, 15900), (200, 2200)),
    ("Beauty", "BTY", ("Rose Face Oil", "Sea Salt Scrub", "Crème Mains", "Lip Balm"),
     ("30 ml", "100 ml"), (600, 4900), (50, 400)),
    ("Toys", "TOY", ("Wooden Train", "Puzzle 1000", "Plush Fox", "Kite"),
     ("Standard",), (900, 5900), (100, 1500)),
    ("Stationery", "STA", ("Dot Grid Notebook", "Fountain Pen", "Washi Tape Set", "Letterpress Cards"),
     ("A5", "A6"), (300, 6900), (30, 600)),
    ("Electronics", "ELE", ("USB-C Cable", "Wireless Charger", "Bluetooth Speaker", "E-Ink Reader"),
     ("Black", "White"), (1299, 19900), (50, 900)),
)
_SUPPLIERS = (("ACME", 7), ("Nordwind GmbH", 14), ("Kōbe Trading", 30), ("Atelier Dupont", 10),
              ("Pacific Supply Co", 21))

_MONEY_CACHE: dict[int, str] = {}


def money(cents: int) -> str:
    """Cents as a decimal string with two places ("-3.05")."""
    text = _MONEY_CACHE.get(cents)
    if text is None:
        sign, value = ("-", -cents) if cents < 0 else ("", cents)
        text = f"{sign}{value // 100}.{value % 100:02d}"
        if len(_MONEY_CACHE) < 200_000:  # interning saves memory on 100k-order stores
            _MONEY_CACHE[cents] = text
    return text


def to_cents(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))


# -- payments: who took each order's money, derived from its id alone (no draw of the RNG) -----------

PAYPAL_EVERY = 15  # one order in 15 (by id) was paid with PayPal; every other with Stripe
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _derived(order_id: int, kind: str, length: int, alphabet: str = _ALPHANUMERIC) -> str:
    digest = hashlib.sha256(f"clerk-sandbox:{kind}:{order_id}".encode()).digest()
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def payment_intent_id(order_id: int) -> str:
    """The Stripe PaymentIntent that paid store order `order_id`: "pi_" and 24 characters from the id.

    The very id the Stripe sandbox gives it (`sandbox.stripe.render.stripe_id("pi", ...)`), so a
    channel's payment reference names a PaymentIntent Stripe knows.
    """
    number = int.from_bytes(hashlib.sha256(f"pi:{order_id}".encode()).digest(), "big")
    letters = []
    for _ in range(24):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        letters.append(_ALPHANUMERIC[digit])
    return "pi_" + "".join(letters)


def payment_gateway(order_id: int) -> str:
    """Who took store order `order_id`'s money, in Clerk's words: "paypal" for one order in
    PAYPAL_EVERY (by id), "stripe" for every other."""
    return "paypal" if order_id % PAYPAL_EVERY == 0 else "stripe"


def payment_reference(order_id: int) -> str:
    """The gateway's id of the payment: the PaymentIntent for Stripe, a 17-character capture id for PayPal."""
    if payment_gateway(order_id) == "paypal":
        return _derived(order_id, "paypal_capture", 17, "0123456789ABCDEFGHJKLMNPRSTUVWXY")
    return payment_intent_id(order_id)


# -- return requests buyers made on the channel, seeded from fulfilled orders ----------------------------

SEEDED_RETURNS = 6
_SEEDED_REASONS = ("damaged", "wrong_item", "changed_mind", "defective", "not_as_described", "late_delivery")
_SEEDED_NOTES = ("The box was crushed and the item inside is cracked.", None, "Ordered two sizes, keeping one.",
                 None, "Colour is nothing like the photos.", None)


@dataclass(frozen=True, slots=True)
class SeededReturn:
    """A return a buyer asked for on a channel (or a refund the merchant made there), not through Clerk.

    `number` counts from 1 within the store (or storefront); `lines` are (line id, units);
    `amount` is what those units were paid (a decimal string); `refunded` says whether the
    channel already moved that money back; `reason` is Clerk's code, each sandbox words it its way.
    """

    number: int
    order_id: int
    lines: tuple[tuple[int, int], ...]
    reason: str
    requested_at: datetime
    amount: str
    refunded: bool
    note: str | None


def seeded_returns(orders: list[Order], count: int = SEEDED_RETURNS) -> list[SeededReturn]:
    """`count` return requests spread evenly over the fulfilled, untricky orders, one reason each in turn.

    Pure and drawn from no RNG: the same orders always give the same returns, and the store's
    other seeded counts are untouched. Each is requested at its order's last change.
    """
    fulfilled = [o for o in orders if o.lifecycle is Lifecycle.FULFILLED and not o.reason and o.lines
                 and all(line.sku and line.quantity > 0 for line in o.lines)]
    if not fulfilled or count <= 0:
        return []
    step = max(1, len(fulfilled) // count)
    made = []
    for index, order in enumerate(fulfilled[step // 2::step][:count]):
        picked = order.lines[: 2 if index % 3 == 2 else 1]
        lines = tuple((line.id, min(line.quantity, 1 + index % 2)) for line in picked)
        paid = 0
        for line, (_, units) in zip(picked, lines, strict=True):
            paid += to_cents(line.unit_price) * units - to_cents(line.discount) * units // line.quantity
        made.append(SeededReturn(
            number=index + 1, order_id=order.id, lines=lines, reason=_SEEDED_REASONS[index % len(_SEEDED_REASONS)],
            requested_at=order.updated_at, amount=money(paid), refunded=index % 3 == 1,
            note=_SEEDED_NOTES[index % len(_SEEDED_NOTES)]))
    return sorted(made, key=lambda r: (r.requested_at, r.number))


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def _pattern(rng: random.Random, pattern: str) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXY"
    return "".join(
        str(rng.randrange(10)) if ch == "#" else rng.choice(letters) if ch == "A" else ch for ch in pattern
    )


def _ean13(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(11)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def _settle(order: Order, unit_cents: list[int], shipping_cents: int) -> None:
    """Prices the lines and sets every total so they add up."""
    gross = discounts = 0
    percent = order.discount_percent
    for line, unit in zip(order.lines, unit_cents, strict=True):
        amount = unit * line.quantity
        line.unit_price = _MONEY_CACHE.get(unit) or money(unit)
        if percent and amount > 0:
            discount = (amount * percent + 50) // 100
            line.discount = money(discount)
            discounts += discount
        else:
            line.discount = "0.00"
        gross += amount
    net = gross - discounts
    bp = order.tax_basis_points
    if order.taxes_included:
        tax = (net * bp + (10_000 + bp) // 2) // (10_000 + bp)
    else:
        tax = (net * bp + 5_000) // 10_000
    tax = max(tax, 0)
    cached = _MONEY_CACHE.get
    total = net + shipping_cents + (0 if order.taxes_included else tax)
    order.subtotal = cached(net) or money(net)
    order.discounts = cached(discounts) or money(discounts)
    order.shipping = cached(shipping_cents) or money(shipping_cents)
    order.tax = cached(tax) or money(tax)
    order.total = cached(total) or money(total)


def _unit_cents(order: Order) -> list[int]:
    return [to_cents(line.unit_price) for line in order.lines]


class _Builder:
    """Draws customers, lines and orders from one seeded RNG."""

    def __init__(self, spec: StoreSpec, rng: random.Random, variants: list[Variant]):
        self.spec = spec
        self.now = spec.clock
        self.rng = rng
        self.customers: list[Customer] = []  # drawn by `customer`, after the catalog
        self.price_cents = {v.sku: to_cents(str(v.price)) for v in variants}
        self.next_order = 0
        self.next_line = 0
        self.popular(variants)

    def popular(self, variants: list[Variant]) -> None:
        """Sets the variants orders draw from, most popular first (a Zipf-like tail)."""
        self.variants = variants
        weights = [(0.02 if not v.requires_shipping else 1.0) / (rank + 1) ** 0.8
                   for rank, v in enumerate(variants)]
        self.cumulative = list(accumulate(weights))

    def address(self, country: _Country, first: str, last: str, company: str | None,
                phone: str | None) -> Address:
        rng = self.rng
        city, province, code = rng.choice(country.places)
        street = country.street.format(n=rng.randint(1, 240), s=rng.choice(country.streets))
        return Address(
            first_name=first, last_name=last, company=company, street1=street,
            street2=f"Apt {rng.randint(1, 40)}" if rng.random() < 0.15 else None,
            city=city, province=province, province_code=code,
            postal_code=_pattern(rng, country.postal) if country.postal else None,
            country=country.code, phone=phone,
        )

    def customer(self, index: int, country: _Country) -> Customer:
        rng = self.rng
        first, last = rng.choice(country.first), rng.choice(country.last)
        if rng.random() < 0.02:
            first = f"{first} {rng.choice(_EMOJI)}"
        handle = f"{_slug(first) or 'customer'}.{_slug(last) or 'x'}{index}"
        phone = None
        if rng.random() < 0.7:
            national = str(rng.randint(1, 9)) + "".join(
                str(rng.randrange(10)) for _ in range(country.phone_digits - 1))
            phone = country.calling + national
        company = rng.choice(_COMPANIES) if rng.random() < 0.1 else None
        addresses = tuple(self.address(country, first, last, company, phone)
                          for _ in range(1 if rng.random() < 0.8 else 2))
        return Customer(id=CUSTOMER_ID_BASE + index, first_name=first, last_name=last,
                        email=f"{handle}@{rng.choice(_DOMAINS)}", phone=phone, addresses=addresses)

    def line(self, variant: Variant, quantity: int) -> Line:
        self.next_line += 1
        return Line(id=LINE_ID_BASE + self.next_line, variant_id=variant.id, sku=variant.sku,
                    title=variant.product_title,
                    variant_title=None if variant.title == "Default Title" else variant.title,
                    quantity=quantity, unit_price="0.00", discount="0.00",
                    requires_shipping=variant.requires_shipping)

    def lines(self, count: int) -> list[Line]:
        rng, variants, cumulative = self.rng, self.variants, self.cumulative
        top = cumulative[-1]
        picked: dict[str, Line] = {}
        for _ in range(count):
            variant = variants[bisect(cumulative, rng.random() * top)]
            if variant.sku not in picked:
                r = rng.random()
                quantity = 1 if r < 0.72 else 2 if r < 0.92 else 3 + int(rng.random() * 3)
                picked[variant.sku] = self.line(variant, quantity)
        return list(picked.values())

    def order(self, created: datetime, lifecycle: Lifecycle | None = None) -> Order:
        rng = self.rng
        r = rng.random()
        count = 1 if r < 0.45 else 2 if r < 0.7 else 3 if r < 0.85 else (
            4 + int(rng.random() * 3) if r < 0.97 else 7 + int(rng.random() * 6))
        lines = self.lines(count)
        customer = self.customers[int(len(self.customers) * rng.random() ** 1.6)]
        requires_shipping = any(line.requires_shipping for line in lines)
        home = customer.addresses[0] if len(customer.addresses) == 1 or rng.random() < 0.8 \
            else customer.addresses[1]
        country = _COUNTRY[home.country]
        units = [self.price_cents[line.sku] for line in lines]
        gross = sum(u * line.quantity for u, line in zip(units, lines, strict=True))
        if not requires_shipping:
            shipping = 0
        elif country.code == HOME_COUNTRY:
            shipping = 0 if gross >= 7500 else (599, 899)[rng.random() < 0.5]
        else:
            shipping = (1499, 1999, 2499)[int(rng.random() * 3)]
        self.next_order += 1
        guest = rng.random() < 0.04
        order = Order(
            id=ORDER_ID_BASE + self.next_order, number=1000 + self.next_order,
            created_at=created, updated_at=created, processed_at=created,
            lifecycle=Lifecycle.OPEN, currency=self.spec.currency, lines=lines,
            subtotal="", shipping="", tax="", discounts="", total="",
            taxes_included=country.taxes_included, requires_shipping=requires_shipping,
            ship_to=home if requires_shipping else None, customer=None if guest else customer,
            email=customer.email, phone=customer.phone, risk=Risk.NONE,
            discount_percent=(10, 15, 20)[int(rng.random() * 3)] if rng.random() < 0.15 else 0,
            tax_basis_points=country.tax_basis_points,
        )
        _settle(order, units, shipping)
        self.live(order, lifecycle)
        return order

    def live(self, order: Order, lifecycle: Lifecycle | None) -> None:
        """Moves the order along its lifecycle, as far as its age allows."""
        random_ = self.rng.random
        now, created = self.now, order.created_at
        age = (now - created).total_seconds()
        if lifecycle is None:
            if random_() < 0.02:
                lifecycle = Lifecycle.CANCELLED
            else:
                still_open = 0.95 if age < 86_400 else 0.6 if age < 3 * 86_400 else (
                    0.2 if age < 7 * 86_400 else 0.02)
                lifecycle = Lifecycle.OPEN if random_() < still_open else Lifecycle.FULFILLED
                if lifecycle is Lifecycle.FULFILLED and age > 14 * 86_400 and random_() < 0.35:
                    lifecycle = Lifecycle.CLOSED
        order.lifecycle = lifecycle
        r = random_()
        if lifecycle is Lifecycle.CANCELLED:
            order.risk = Risk.HIGH if r < 0.3 else Risk.MEDIUM if r < 0.5 else Risk.LOW
            order.cancelled_at = order.closed_at = order.updated_at = self.later(created, 600, 2 * 86_400)
            return
        order.risk = Risk.NONE if r < 0.6 else Risk.LOW if r < 0.95 else Risk.MEDIUM
        if lifecycle is Lifecycle.OPEN:
            order.updated_at = self.later(created, 0, 600)
            return
        order.updated_at = self.later(created, 7_200, 3 * 86_400)
        if lifecycle is Lifecycle.CLOSED:
            order.closed_at = order.updated_at = self.later(order.updated_at, 86_400, 10 * 86_400)

    def later(self, after: datetime, low: int, high: int) -> datetime:
        """A whole second between `low` and `high` seconds after `after`, but not past now."""
        moment = after + timedelta(seconds=low + int(self.rng.random() * (high - low)))
        return min(moment, max(self.now, after))


class Store:
    """The generated store. Mutations take `lock`; readers of `sorted_keys` hold it too.

    With several `spec.channels`, `channel(name)` is one storefront's view: its own
    orders, the shared catalog, customers, stock and lock.
    """

    def __init__(self, spec: StoreSpec, products: list[Product], customers: list[Customer],
                 orders: list[Order], on_hand: dict[str, int], tight: frozenset[str],
                 builder: _Builder, channel: str | None = None, lock: threading.RLock | None = None):
        self.spec = spec
        self.channel_name = channel
        self.products = products
        self.variants = [v for p in products for v in p.variants]
        self.customers = customers
        self.orders = orders
        self.on_hand = on_hand
        self.tight = tight
        self.lock = lock or threading.RLock()
        self._builder = builder
        self._by_id = {o.id: o for o in orders}
        self._keys = {
            "updated_at": sorted((o.updated_at, o.id) for o in orders),
            "created_at": sorted((o.created_at, o.id) for o in orders),
            "id": [(o.id, o.id) for o in orders],
        }
        self._clock = max([spec.clock, *(o.updated_at for o in orders)])
        self._edits = 0
        self._returns: list[SeededReturn] | None = None

    @property
    def currency(self) -> str:
        return self.spec.currency

    def channel(self, name: str) -> Store:
        """The orders placed on storefront `name`, over this store's catalog, customers and stock."""
        if name not in self.spec.channels:
            raise KeyError(f"no channel {name!r} in this store; it has {', '.join(self.spec.channels)}")
        return Store(self.spec, self.products, self.customers, [o for o in self.orders if o.channel == name],
                     self.on_hand, self.tight, self._builder, channel=name, lock=self.lock)

    def order(self, order_id: int) -> Order | None:
        return self._by_id.get(order_id)

    def return_requests(self) -> list[SeededReturn]:
        """The returns buyers asked for on this store (or storefront), oldest first (see `seeded_returns`)."""
        if self._returns is None:
            self._returns = seeded_returns(self.orders)
        return self._returns

    def sorted_keys(self, field_name: str) -> list[tuple[Any, int]]:
        """The live `(value, order id)` index on `updated_at`, `created_at` or `id`; hold `lock`."""
        return self._keys[field_name]

    def catalog_rows(self) -> list[dict[str, Any]]:
        """The master catalog, one row per SKU, in the columns of `clerk import catalog`."""
        rows = []
        for product in self.products:
            for v in product.variants:
                title = product.title if len(product.variants) == 1 else f"{product.title} - {v.title}"
                rows.append({
                    "sku": v.sku, "title": title, "price": str(v.price), "currency": self.currency,
                    "cost": str(v.cost), "weight_grams": v.weight_grams, "barcode": v.barcode or "",
                    "category": v.category, "supplier": v.supplier,
                    "lead_time_days": v.lead_time_days, "moq": v.moq, "pack_size": v.pack_size,
                })
        return rows

    def stock_rows(self) -> list[dict[str, Any]]:
        """On-hand counts (`clerk import stock`): enough for every open order, barely so for `tight`."""
        return [{"sku": v.sku, "on_hand": self.on_hand[v.sku]} for v in self.variants]

    def expected_reasons(self) -> dict[str, str]:
        """The reason code each tricky order should trigger, by the store's order id."""
        return {str(o.id): o.reason for o in self.orders if o.reason}

    def edit_orders(self, count: int, at: datetime | None = None,
                    ids: Collection[int] | None = None) -> list[Order]:
        """Changes a quantity or the address of up to `count` open orders, bumping `updated_at`.

        Tricky orders are left alone, so each keeps the one reason it was made for.

        Args:
            count: how many orders to edit.
            at: when; defaults to the wall clock. The store's clock never goes back, so
                an edit is always newer than every earlier change.
            ids: edit only among these orders (a test picking the ones it has seen).
        """
        with self.lock:
            rng = self._builder.rng
            candidates = [o for o in self.orders if o.lifecycle is Lifecycle.OPEN and not o.reason
                          and (ids is None or o.id in ids)]
            chosen = rng.sample(candidates, min(count, len(candidates)))
            stamp = self._tick(at)
            for order in chosen:
                lines = [line for line in order.lines if line.sku not in self.tight]
                if lines and (order.ship_to is None or rng.random() < 0.6):
                    rng.choice(lines).quantity += 1
                    _settle(order, _unit_cents(order), to_cents(order.shipping))
                else:
                    self._edits += 1
                    order.ship_to = replace(order.ship_to, street2=f"Unit {self._edits}")
                self._touch(order, stamp)
            return chosen

    def add_orders(self, count: int, at: datetime | None = None) -> list[Order]:
        """New open orders placed `at` (default: now), drawn like the rest but never tricky."""
        with self.lock:
            stamp = self._tick(at)
            added = []
            for _ in range(count):
                order = self._builder.order(stamp, Lifecycle.OPEN)
                order.channel = self.channel_name or self.spec.channels[0]
                order.created_at = order.updated_at = order.processed_at = stamp
                self.orders.append(order)
                self._by_id[order.id] = order
                insort(self._keys["updated_at"], (stamp, order.id))
                insort(self._keys["created_at"], (stamp, order.id))
                self._keys["id"].append((order.id, order.id))
                added.append(order)
            return added

    def _tick(self, at: datetime | None) -> datetime:
        wanted = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self._clock = max(wanted, self._clock + timedelta(seconds=1))
        return self._clock

    def _touch(self, order: Order, stamp: datetime) -> None:
        keys = self._keys["updated_at"]
        del keys[bisect_left(keys, (order.updated_at, order.id))]
        order.updated_at = stamp
        insort(keys, (stamp, order.id))


def _catalog(spec: StoreSpec, rng: random.Random) -> list[Product]:
    products = []
    since = spec.clock - timedelta(days=spec.days * 2)
    last = spec.products - 1 if spec.products >= 10 else -1  # one gift card in a real catalog
    for index in range(spec.products):
        updated = since + timedelta(seconds=rng.randrange(spec.days * 86_400))
        if index == last:
            category, prefix, titles, options, prices, weights = (
                "Gift cards", "GFT", ("Gift Card",), ("25", "50", "100"), (2500, 10000), (0, 0))
        else:
            category, prefix, titles, options, prices, weights = _CATEGORIES[index % len(_CATEGORIES)]
        round_ = index // len(_CATEGORIES)
        title = titles[round_ % len(titles)]
        if round_ >= len(titles):
            title = f"{title} No. {round_ // len(titles) + 1}"
        supplier, lead_time = _SUPPLIERS[rng.randrange(len(_SUPPLIERS))]
        product = Product(id=PRODUCT_ID_BASE + index + 1, title=title,
                          handle="-".join([w for w in map(_slug, title.split()) if w] + [str(index + 1)]),
                          category=category, supplier=supplier, status="active", updated_at=updated)
        chosen = options[: rng.randint(1, min(4, len(options)))]
        base = rng.randint(prices[0], prices[1]) // 100 * 100 + rng.choice((0, 50, 99, 99))
        pack = rng.choice((1, 1, 6, 12))
        for position, option in enumerate(chosen):
            gift = category == "Gift cards"
            price = int(option) * 100 if gift else base + position * 200
            multiple_options = len(options) > 1
            product.variants.append(Variant(
                id=VARIANT_ID_BASE + index * 10 + position + 1, product_id=product.id,
                sku=f"{prefix}-{index + 1:03d}-{_slug(option).upper()}",
                title=option if multiple_options else "Default Title", product_title=title,
                price=Decimal(price).scaleb(-2), cost=Decimal(price * rng.randint(35, 60) // 100).scaleb(-2),
                barcode=None if gift or rng.random() < 0.1 else _ean13(rng),
                weight_grams=rng.randint(*weights), category=category, supplier=supplier,
                lead_time_days=lead_time, moq=pack * rng.choice((1, 2, 4)), pack_size=pack,
                requires_shipping=not gift, updated_at=updated,
            ))
        products.append(product)
    return products


def _make_tricky(builder: _Builder, order: Order, reason: str) -> None:
    """Bends an open order so it triggers `reason` and nothing else."""
    rng = builder.rng
    units, shipping = _unit_cents(order), to_cents(order.shipping)
    order.reason = reason
    if reason == Quarantine.INVALID_QUANTITY:
        rng.choice(order.lines).quantity = rng.choice((0, -1, -2))
        _settle(order, units, shipping)
    elif reason == Quarantine.NO_LINE_ITEMS:
        order.lines = []
        _settle(order, [], shipping)
    elif reason == Quarantine.UNKNOWN_CURRENCY:
        order.currency = rng.choice(RETIRED_CURRENCIES)
    elif reason == Hold.UNKNOWN_SKU:
        line = rng.choice(order.lines)
        line.variant_id = None
        line.sku = rng.choice((None, f"RETIRED-{rng.randint(100, 999)}"))
        if line.sku is None:
            line.title, line.variant_title = "Custom engraving", None
    elif reason == Hold.PRICE_MISMATCH:
        index = rng.randrange(len(units))
        units[index] = units[index] * (100 + rng.choice((-1, 1)) * rng.randint(8, 25)) // 100
        order.discount_percent = 0
        _settle(order, units, shipping)
    elif reason == Hold.INCOMPLETE_ADDRESS:
        address = order.ship_to
        if address is None or address.country in NO_POSTAL_CODE:
            address = builder.address(_COUNTRY[HOME_COUNTRY], order.customer.first_name if order.customer
                                      else "Pat", order.customer.last_name if order.customer else "Doe",
                                      None, order.phone)
            order.tax_basis_points = _COUNTRY[HOME_COUNTRY].tax_basis_points
            order.taxes_included = False
            _settle(order, units, shipping)
        order.ship_to = replace(address, **{rng.choice(("street1", "postal_code", "city")): None})
    elif reason == Hold.TOTAL_MISMATCH:
        order.total = money(to_cents(order.total) + rng.choice((100, 300, 500, 1000, -400)))
    elif reason == Hold.HIGH_RISK:
        order.risk = Risk.HIGH
    elif reason == Quarantine.MALFORMED:
        target = rng.choice(("total", "shipping", "tax", "unit_price"))
        holder = rng.choice(order.lines) if target == "unit_price" else order
        good = getattr(holder, target)
        setattr(holder, target, rng.choice((good.replace(".", ","), "N/A", "", f"{good}.00")))
    # insufficient_stock is finished once stock is known: see `_short_of_stock`.


def _deal_tricks(builder: _Builder, orders: list[Order], huge: set[int]) -> list[Order]:
    """Bends a `tricky_share` of one channel's open orders; returns those to be short of stock."""
    rng, spec = builder.rng, builder.spec
    open_orders = [o for o in orders if o.lifecycle is Lifecycle.OPEN]
    short: list[Order] = []
    candidates = [o for o in open_orders if o.id not in huge and o.ship_to is not None
                  and all(line.requires_shipping for line in o.lines)]
    wanted = max(len(ALL_REASONS), round(spec.tricky_share * len(open_orders)))
    for order in reversed(orders):  # a small store may need recent history reopened
        if len(candidates) >= wanted:
            break
        if order.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED) and order.id not in huge \
                and order.ship_to is not None and all(line.requires_shipping for line in order.lines):
            order.lifecycle, order.closed_at = Lifecycle.OPEN, None
            candidates.append(order)
    chosen = rng.sample(candidates, min(wanted, len(candidates)))
    reasons = list(ALL_REASONS) + [rng.choice(ALL_REASONS) for _ in range(len(chosen) - len(ALL_REASONS))]
    for order, reason in zip(chosen, reasons, strict=False):
        if reason == Hold.INSUFFICIENT_STOCK:
            order.reason = reason
            short.append(order)
        else:
            _make_tricky(builder, order, reason)
    return short


def _stock(spec: StoreSpec, rng: random.Random, variants: list[Variant], orders: list[Order],
           short: list[Order]) -> tuple[dict[str, int], frozenset[str]]:
    """On-hand counts covering every open order; a few SKUs with hardly any to spare."""
    open_demand = {v.sku: 0 for v in variants}
    sold = 0
    for order in orders:
        for line in order.lines:
            if line.sku in open_demand and line.quantity > 0:
                sold += line.quantity
                if order.lifecycle is Lifecycle.OPEN:
                    open_demand[line.sku] += line.quantity
    reserved_for_tricks = {o.lines[0].sku for o in short}
    physical = [v.sku for v in variants if v.requires_shipping and v.sku not in reserved_for_tricks]
    tight = frozenset(rng.sample(physical, min(len(physical), max(2, min(8, len(physical) // 20)))))
    per_sku_day = sold / max(1, len(variants)) / spec.days
    buffer = int(per_sku_day * 45) + 20  # room for edits and new orders between runs
    on_hand = {sku: wanted + (rng.randint(0, 3) if sku in tight else buffer)
               for sku, wanted in open_demand.items()}
    return on_hand, tight


def _short_of_stock(order: Order, on_hand: dict[str, int], rng: random.Random) -> None:
    line = order.lines[0]
    line.quantity = on_hand[line.sku] + rng.randint(25, 60)
    _settle(order, _unit_cents(order), to_cents(order.shipping))


def generate_store(spec: StoreSpec | None = None) -> Store:
    """Generates the store `spec` describes; the same spec always gives the same store."""
    spec = spec or StoreSpec()
    collecting = gc.isenabled()
    # Millions of acyclic objects: collection passes over them cost ~15% and free nothing.
    gc.disable()
    try:
        return _generate(spec)
    finally:
        if collecting:
            gc.enable()


def _generate(spec: StoreSpec) -> Store:
    rng = random.Random(spec.seed)
    products = _catalog(spec, rng)
    variants = [v for p in products for v in p.variants]
    popularity = list(variants)
    rng.shuffle(popularity)
    builder = _Builder(spec, rng, popularity)
    weights = [c.weight for c in _COUNTRIES]
    builder.customers = [builder.customer(i + 1, country)
                         for i, country in enumerate(rng.choices(_COUNTRIES, weights, k=spec.customers))]

    now, window = spec.clock, spec.days * 86_400
    offsets = sorted(rng.randrange(window) for _ in range(spec.orders))
    start = now - timedelta(seconds=window)
    orders = [builder.order(start + timedelta(seconds=offset)) for offset in offsets]
    for index, order in enumerate(orders):
        order.channel = spec.channels[index % len(spec.channels)]

    physical = [v for v in variants if v.requires_shipping]
    open_orders = [o for o in orders if o.lifecycle is Lifecycle.OPEN]
    history = [o for o in orders if o.lifecycle in (Lifecycle.FULFILLED, Lifecycle.CLOSED)]
    huge: set[int] = set()
    if spec.huge_orders and physical:
        picks = ([rng.choice(open_orders)] if open_orders else []) + rng.sample(
            history, min(len(history), spec.huge_orders - 1))
        for order in picks[: spec.huge_orders]:
            chosen = rng.sample(physical, min(len(physical), rng.randint(40, 120)))
            order.lines = [builder.line(v, rng.randint(1, 2)) for v in chosen]
            _settle(order, [builder.price_cents[v.sku] for v in chosen], to_cents(order.shipping))
            huge.add(order.id)

    short: list[Order] = []
    if spec.tricky_share > 0:
        for channel in spec.channels:
            short += _deal_tricks(builder, [o for o in orders if o.channel == channel], huge)
    on_hand, tight = _stock(spec, rng, variants, orders, short)
    for order in short:
        _short_of_stock(order, on_hand, rng)
    builder.popular([v for v in popularity if v.sku not in tight])
    return Store(spec, products, builder.customers, orders, on_hand, tight, builder)
