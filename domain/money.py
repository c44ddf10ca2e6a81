"""Money as `Decimal`, and the currencies Clerk recognises."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
# Amounts are stored as NUMERIC(18, 4): anything this large is a bad payload, not a sale.
LIMIT = Decimal(10) ** 14

# ISO 4217 active codes (2024 list), less the testing and no-currency codes, which no sale
# is made in. Kept here, not fetched, so checks are pure.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK
    DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR
    PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW
    UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU
    XUA YER ZAR ZMW ZWG ZWL""".split()
)


# ISO 4217 minor units where they are not 2 (the currencies Stripe also treats so).
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


class MoneyError(ValueError):
    """A value that cannot be read as an amount of money."""


def to_money(value: object) -> Decimal:
    """Reads a vendor amount (string, int or Decimal; never float) as a finite `Decimal`.

    Raises:
        MoneyError: when the value is not a finite decimal number.
    """
    if isinstance(value, bool) or isinstance(value, float) or value is None:
        raise MoneyError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not an amount: {value!r}") from exc
    if not amount.is_finite() or abs(amount) >= LIMIT:
        raise MoneyError(f"not an amount: {value!r}")
    return amount


def cents(amount: Decimal) -> Decimal:
    """Rounds to the cent, half up, as shops print totals."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def is_known_currency(code: object) -> bool:
    """True for an active ISO 4217 code, spelled in capitals."""
    return isinstance(code, str) and code in ISO_4217


def minor_unit(currency: str) -> int:
    """Digits after the point in `currency`'s smallest unit: 0 for JPY, 3 for KWD, else 2."""
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
