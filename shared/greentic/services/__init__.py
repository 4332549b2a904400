"""The five services, one module each: its pipeline (decode → act → publish → ack) and its
wiring; the processes in `services/*/main.py` only start them."""
