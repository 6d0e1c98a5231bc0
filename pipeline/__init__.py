"""福州市建设系统重大事故隐患专项排查整治2023行动 — Excel returns pipeline."""

__version__ = "0.1.0"
