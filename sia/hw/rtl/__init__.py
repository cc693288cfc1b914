"""SIA in synthesizable RTL (Amaranth 0.5): PE array, aggregation core, ping-pong
membranes, dispatcher, loaders, AXI4-Lite / AXI4-Stream top (docs/architecture.md)."""
