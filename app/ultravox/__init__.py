"""Ultravox: the historical call import (seeds 000 and 001)."""
