"""The audit log's budget for unauthenticated refusals, and the signature checks' bounds (pure)."""

from __future__ import annotations

import hashlib
import hmac
import time

import stripe

from api.webhook_audit import UNKNOWN_SOURCES, RefusalBudget
from runledger.contracts import webhooks as wh


def test_refusals_are_recorded_up_to_the_budget_per_source_then_only_counted() -> None:
    budget = RefusalBudget(3)
    assert [budget.take("gh") for _ in range(5)] == [True, True, True, False, False]
    assert budget.take("stripe")  # another source has its own budget
    assert [budget.take(UNKNOWN_SOURCES) for _ in range(4)] == [True, True, True, False]
    assert RefusalBudget(0).take("gh") is False


def test_stripe_verification_matches_stripes_own_verifier_and_any_v1() -> None:
    secret, body = "whsec_abc123abc123abc123", b'{"id":"evt_1","type":"invoice.paid"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret)
    assert stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)
    now = time.time()
    assert wh.verify("stripe", secret, {"stripe-signature": header}, body, now=now) is wh.Verdict.SIGNED
    other = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_other")
    both = f"{other},{header.split(',')[1]}"
    assert wh.verify("stripe", secret, {"stripe-signature": both}, body, now=now) is wh.Verdict.SIGNED
    assert wh.verify("stripe", secret, {"stripe-signature": other}, body, now=now) is wh.Verdict.INVALID
    assert wh.verify("stripe", secret, {"stripe-signature": header}, body, now=now + 301) is wh.Verdict.STALE
    assert wh.verify("stripe", secret, {"stripe-signature": header}, body, now=now - 301) is wh.Verdict.STALE


def test_an_attackers_header_cannot_make_a_check_cost_more() -> None:
    secret, body = "0123456789abcdef0123", b"{}"
    many = ",".join([f"t={int(time.time())}"] + [f"v1={'0' * 64}"] * (wh.MAX_SIGNATURES + 1))
    assert (
        wh.verify("stripe", secret, {"stripe-signature": many}, body, now=time.time()) is wh.Verdict.INVALID
    )
    good = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    huge = "sha256=" + good + " " * wh.MAX_HEADER_CHARS
    assert wh.verify("github", secret, {"x-hub-signature-256": huge}, body, now=0) is wh.Verdict.INVALID
    assert (
        wh.verify("github", secret, {"x-hub-signature-256": f"sha256={good}"}, body, now=0)
        is wh.Verdict.SIGNED
    )
    std = wh.new_secret("standard")
    headers = wh.sign_headers("standard", std, body, delivery_key="msg_1", event=None, now=time.time())
    lowered = {k.lower(): v for k, v in headers.items()}
    assert wh.verify("standard", std, lowered, body, now=time.time()) is wh.Verdict.SIGNED
    lowered["webhook-signature"] = " ".join([lowered["webhook-signature"]] * (wh.MAX_SIGNATURES + 1))
    assert wh.verify("standard", std, lowered, body, now=time.time()) is wh.Verdict.INVALID
    # Not UTF-8: the Standard Webhooks package signs text; refused, never a crash.
    assert wh.verify(
        "standard", std, lowered | {"webhook-signature": "v1,AAAA"}, b"\xff", now=time.time()
    ) is (wh.Verdict.INVALID)
