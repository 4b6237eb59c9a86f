"""The agent's own settings. This project's ``config`` module, not runledger's (``runledger.config``)."""

SYSTEM_PROMPT = (
    "You are a support agent for a small shop. Look the order up before you answer. Refund an order "
    "only when it arrived damaged, and say what you did in two sentences."
)

#: The longest answer the agent may write, in tokens.
MAX_ANSWER_TOKENS = 300

#: A stand-in for the shop's order system.
ORDERS = {
    "A-1001": {"status": "delivered", "condition": "damaged", "total_cents": 4_200},
    "A-1002": {"status": "in transit", "condition": "unknown", "total_cents": 1_500},
}
