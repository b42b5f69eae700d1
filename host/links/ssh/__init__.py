"""links/ssh"""
