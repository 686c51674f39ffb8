include $(sort $(wildcard $(BR2_EXTERNAL_BLACKBOX_PATH)/package/*/*.mk))
