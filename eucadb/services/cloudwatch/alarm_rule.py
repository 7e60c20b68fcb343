"""Composite alarms' AlarmRule: a tokenizer, a recursive-descent parser and a pure evaluator.

Grammar, from the AlarmRule documentation of PutCompositeAlarm (botocore model and
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html):

    rule    := or
    or      := and ("OR" and)*
    and     := not ("AND" not)*
    not     := "NOT" not | primary
    primary := "(" rule ")" | "TRUE" | "FALSE" | STATE "(" name ")"
    STATE   := "ALARM" | "OK" | "INSUFFICIENT_DATA"
    name    := an alarm name or ARN, bare (up to white space or a parenthesis) or in double quotes

Keywords are matched without regard to case (the DeleteAlarms documentation suggests changing a
rule "to `false`"). Errors are worded as AWS words them, "Error in AlarmRule [Unsupported token ')'
at char 1]" and "... must be: ')']" (0-based character offsets; seen in AWS answers quoted in
aws/aws-cdk issues 13953 and 34662), and ValidationError is their code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator, Union

from eucadb.services.cloudwatch.errors import ApiError

MAX_RULE_CHARS = 10240   # model: AlarmRule max 10240
MAX_CHILDREN = 100       # "The AlarmRule can specify as many as 100 "children" alarms" (model)
MAX_ELEMENTS = 500       # "... can have as many as 500 elements" (model): children, TRUE/FALSE, parentheses
STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
TOKEN_RE = re.compile(r'\s+|(?P<paren>[()])|"(?P<quoted>[^"]*)"|(?P<open_quote>")|(?P<word>[^\s()"]+)')


@dataclass(frozen=True)
class Token:
    text: str      # as written (a quoted name without its quotes)
    at: int        # 0-based offset in the rule
    quoted: bool = False


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Ref:
    state: str     # ALARM, OK or INSUFFICIENT_DATA
    name: str      # as written: a name or an ARN


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class Op:
    kind: str      # AND or OR
    operands: tuple["Node", ...]


Node = Union[Const, Ref, Not, Op]


def rule_error(message: str) -> ApiError:
    return ApiError("ValidationError", f"Error in AlarmRule [{message}]")


def tokenize(rule: str) -> list[Token]:
    out: list[Token] = []
    for m in TOKEN_RE.finditer(rule):
        if m["open_quote"] is not None:
            raise rule_error(f"Unterminated quoted alarm name at char {m.start()}")
        if m["paren"] is not None:
            out.append(Token(m["paren"], m.start()))
        elif m["quoted"] is not None:
            out.append(Token(m["quoted"], m.start(), quoted=True))
        elif m["word"] is not None:
            out.append(Token(m["word"], m.start()))
    return out


class _Parser:
    def __init__(self, rule: str):
        self.rule, self.tokens, self.i, self.elements = rule, tokenize(rule), 0, 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self, *words: str) -> str | None:
        t = self.peek()
        if t is not None and not t.quoted and t.text.upper() in words:
            self.i += 1
            return t.text.upper()
        return None

    def unsupported(self, expected: str | None = None) -> ApiError:
        t = self.peek()
        if t is None:
            where = f"Unexpected end of rule at char {len(self.rule)}"
        else:
            where = f"Unsupported token '{t.text}' at char {t.at}"
        return rule_error(where + (f", must be: '{expected}'" if expected else ""))

    def expect(self, text: str) -> None:
        t = self.peek()
        if t is None or t.quoted or t.text != text:
            raise self.unsupported(text)
        self.i += 1

    def count(self) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise rule_error(f"AlarmRule can have at most {MAX_ELEMENTS} elements")

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise self.unsupported()
        return node

    def _chain(self, kind: str, operand: Callable[[], Node]) -> Node:
        items = [operand()]
        while self.keyword(kind):
            items.append(operand())
        return items[0] if len(items) == 1 else Op(kind, tuple(items))

    def or_(self) -> Node:
        return self._chain("OR", self.and_)

    def and_(self) -> Node:
        return self._chain("AND", self.not_)

    def not_(self) -> Node:
        if self.keyword("NOT"):
            return Not(self.not_())
        return self.primary()

    def primary(self) -> Node:
        t = self.peek()
        if t is None:
            raise self.unsupported()
        if not t.quoted and t.text == "(":
            self.i += 1
            self.count()
            node = self.or_()
            self.expect(")")
            return node
        constant = self.keyword("TRUE", "FALSE")
        if constant:
            self.count()
            return Const(constant == "TRUE")
        state = self.keyword(*STATES)
        if state is None:
            raise self.unsupported()
        self.expect("(")
        name = self.peek()
        if name is None or (not name.quoted and name.text in "()"):
            raise self.unsupported()
        self.i += 1
        self.expect(")")
        self.count()
        return Ref(state, name.text)


def parse(rule: str) -> Node:
    """The rule's tree; ApiError (ValidationError) worded as AWS words it when the rule is bad."""
    if len(rule) > MAX_RULE_CHARS:
        raise ApiError("ValidationError", "1 validation error detected: Value at 'alarmRule' failed to satisfy "
                                          f"constraint: Member must have length less than or equal to {MAX_RULE_CHARS}")
    if not rule or rule != rule.strip():
        # AWS's answer quoted in hashicorp/terraform-provider-aws issue 19575
        raise ApiError("ValidationError", "AlarmRule must not contain leading or trailing whitespace or be null")
    node = _Parser(rule).parse()
    if len(set(references(node))) > MAX_CHILDREN:
        raise rule_error(f"AlarmRule can reference at most {MAX_CHILDREN} alarms")
    return node


def references(node: Node) -> Iterator[str]:
    """Every alarm name or ARN the rule names, in order of appearance (with repeats)."""
    if isinstance(node, Ref):
        yield node.name
    elif isinstance(node, Not):
        yield from references(node.operand)
    elif isinstance(node, Op):
        for operand in node.operands:
            yield from references(operand)


def evaluate(node: Node, state_of: Callable[[str], str]) -> bool:
    """The rule's truth given each referenced alarm's state (`state_of` takes the name as written)."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Ref):
        return state_of(node.name) == node.state
    if isinstance(node, Not):
        return not evaluate(node.operand, state_of)
    results = (evaluate(operand, state_of) for operand in node.operands)
    return all(results) if node.kind == "AND" else any(results)
