"""Measuring stylizers: flicker, look against Gatys' reference and a peer, translators against their targets."""
