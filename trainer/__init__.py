"""Trackside trainer: PPO and SAC on the DeepRacer simulator, writing DeepRacer model folders."""
