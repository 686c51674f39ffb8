################################################################################
#
# blackbox-dashcam
#
################################################################################

BLACKBOX_DASHCAM_PREBUILT = $(call qstrip,$(BR2_PACKAGE_BLACKBOX_DASHCAM_PREBUILT_PATH))
BLACKBOX_DASHCAM_PREBUILT_NAME = $(notdir $(BLACKBOX_DASHCAM_PREBUILT))

# The "source" is the directory that holds the prebuilt binary, and only
# that one file is copied from it (the rsync filter below). When the
# package is disabled, or the path is empty, this package's own directory
# stands in: the local site method needs a SITE to parse at all.
BLACKBOX_DASHCAM_SITE = $(if $(BLACKBOX_DASHCAM_PREBUILT),$(patsubst %/,%,$(dir $(BLACKBOX_DASHCAM_PREBUILT))),$(BR2_EXTERNAL_BLACKBOX_PATH)/package/blackbox-dashcam)
BLACKBOX_DASHCAM_SITE_METHOD = local
BLACKBOX_DASHCAM_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--include='/$(BLACKBOX_DASHCAM_PREBUILT_NAME)' --exclude='*'
BLACKBOX_DASHCAM_LICENSE = MIT or Apache-2.0

define BLACKBOX_DASHCAM_CHECK_PREBUILT
	if [ ! -f "$(BLACKBOX_DASHCAM_PREBUILT)" ]; then \
		echo "blackbox: no prebuilt binary at $(BLACKBOX_DASHCAM_PREBUILT)" >&2; \
		echo "blackbox: run scripts/build-aarch64, or set BR2_PACKAGE_BLACKBOX_DASHCAM_PREBUILT_PATH" >&2; \
		exit 1; \
	fi
endef
BLACKBOX_DASHCAM_PRE_RSYNC_HOOKS += BLACKBOX_DASHCAM_CHECK_PREBUILT

define BLACKBOX_DASHCAM_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/$(BLACKBOX_DASHCAM_PREBUILT_NAME) \
		$(TARGET_DIR)/usr/bin/blackbox
	$(INSTALL) -D -m 0644 $(BR2_EXTERNAL_BLACKBOX_PATH)/../docs/LICENSES.md \
		$(TARGET_DIR)/usr/share/doc/blackbox/LICENSES.md
endef

$(eval $(generic-package))
