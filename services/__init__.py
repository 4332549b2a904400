"""The five service processes. Each package only wires library objects together."""
