"""power/drivers"""
