"""Pure authorization: the action catalogue and the decision engine. No I/O."""
