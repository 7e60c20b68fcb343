"""Recursive-descent parser: tokens → AST.

Precedence, lowest first: OR/||, AND/&&, comparisons (== != < > <= >=), + -, * /, unary - and
NOT/!, ^ (right-associative, binds tighter than unary minus: -2^2 is -(2^2)).
"""
from __future__ import annotations

from eucadb.services.cloudwatch.math.errors import ExpressionError
from eucadb.services.cloudwatch.math.lexer import Kind, Token, tokenize
from eucadb.services.cloudwatch.math.nodes import Array, Binary, Call, Node, Number, Ref, Text, Unary, Word

COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
MAX_DEPTH = 64


class Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def _is(self, *ops: str) -> bool:
        return self.token.kind is Kind.OP and self.token.text in ops

    def _take(self) -> Token:
        tok = self.token
        self.i += 1
        return tok

    def _expect(self, op: str) -> Token:
        if not self._is(op):
            raise self._unexpected(f"expected '{op}'")
        return self._take()

    def _unexpected(self, wanted: str) -> ExpressionError:
        tok = self.token
        shown = "end of expression" if tok.kind is Kind.END else repr(tok.text)
        return ExpressionError(f"Syntax error: unexpected {shown}, {wanted}", tok.position)

    def parse(self) -> Node:
        if self.token.kind is Kind.END:
            raise ExpressionError("The expression is empty")
        node = self.expr()
        if self.token.kind is not Kind.END:
            raise self._unexpected("expected an operator or the end of the expression")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"The expression nests deeper than {MAX_DEPTH} levels", self.token.position)
        try:
            return self._binary(0)
        finally:
            self.depth -= 1

    LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), COMPARISONS, ("+", "-"), ("*", "/"))

    def _binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self._binary(level + 1)
        while self._is(*self.LEVELS[level]):
            tok = self._take()
            left = Binary(tok.text, left, self._binary(level + 1), tok.position)
        return left

    def unary(self) -> Node:
        if self._is("-", "!", "+"):
            op = self._take().text
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError(f"The expression nests deeper than {MAX_DEPTH} levels", self.token.position)
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            return operand if op == "+" else Unary(op, operand)
        return self.power()

    def power(self) -> Node:
        base = self.primary()
        if self._is("^"):
            tok = self._take()
            self.depth += 1   # 2^2^2^… nests to the right
            if self.depth > MAX_DEPTH:
                raise ExpressionError(f"The expression nests deeper than {MAX_DEPTH} levels", tok.position)
            try:
                return Binary("^", base, self.unary(), tok.position)
            finally:
                self.depth -= 1
        return base

    def primary(self) -> Node:
        tok = self.token
        if tok.kind is Kind.NUMBER:
            self._take()
            return Number(float(tok.text))
        if tok.kind is Kind.STRING:
            self._take()
            return Text(tok.text)
        if tok.kind is Kind.ID:
            self._take()
            if self._is("("):
                raise ExpressionError(f"Unrecognized function {tok.text} (function names are upper case)",
                                      tok.position)
            return Ref(tok.text, tok.position)
        if tok.kind is Kind.NAME:
            self._take()
            if not self._is("("):
                return Word(tok.text, tok.position)
            self._take()
            args: list[Node] = []
            if not self._is(")"):
                args.append(self.expr())
                while self._is(","):
                    self._take()
                    args.append(self.expr())
            self._expect(")")
            return Call(tok.text, tuple(args), tok.position)
        if self._is("("):
            self._take()
            node = self.expr()
            self._expect(")")
            return node
        if self._is("["):
            self._take()
            items = [self.expr()]
            while self._is(","):
                self._take()
                items.append(self.expr())
            self._expect("]")
            return Array(tuple(items))
        raise self._unexpected("expected a number, an Id, a function or '('")


def parse(text: str) -> Node:
    return Parser(text).parse()
