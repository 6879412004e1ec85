"""The center's clock (北斗时钟同步, seed 003): readings of the time source, the
corrected time the center gives terminals, the operators' panel (docs/clock.md)."""
