/* vivid-ctl: set V4L2 controls by name, for the qemu rig's fault-injection tests (vivid's
 * "Disconnect", "Inject Fatal Streaming Error", "Percentage of Dropped Buffers", ...).
 * The guest has no v4l2-ctl; this is the few lines of it the tests need.
 *
 *   vivid-ctl DEVICE                   list the controls (id, type, name, value)
 *   vivid-ctl DEVICE 'NAME=VALUE' ...  set each (name case-insensitive; buttons take any value)
 *
 * Exit 0 when every control was found and set. Built static for aarch64 by
 * scripts/qemu/v4l2-test (aarch64-linux-gnu-gcc -static).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int find(int fd, const char *name, struct v4l2_query_ext_ctrl *out) {
    struct v4l2_query_ext_ctrl q;
    memset(&q, 0, sizeof q);
    q.id = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
    while (ioctl(fd, VIDIOC_QUERY_EXT_CTRL, &q) == 0) {
        if (!(q.flags & V4L2_CTRL_FLAG_DISABLED) && q.type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            if (!name) {
                printf("0x%08x type %u  %-40s", q.id, q.type, q.name);
                struct v4l2_control c = {.id = q.id};
                if (q.type != V4L2_CTRL_TYPE_BUTTON && ioctl(fd, VIDIOC_G_CTRL, &c) == 0)
                    printf(" = %d", c.value);
                printf("\n");
            } else if (strcasecmp(name, q.name) == 0) {
                *out = q;
                return 0;
            }
        }
        q.id |= V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: vivid-ctl DEVICE ['NAME=VALUE' ...]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_NONBLOCK);
    if (fd < 0) {
        fprintf(stderr, "vivid-ctl: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (argc == 2) {
        find(fd, NULL, NULL);
        return 0;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        char name[64];
        const char *eq = strrchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof name) {
            fprintf(stderr, "vivid-ctl: %s: expected NAME=VALUE\n", argv[i]);
            return 2;
        }
        memcpy(name, argv[i], eq - argv[i]);
        name[eq - argv[i]] = 0;
        struct v4l2_query_ext_ctrl q;
        if (find(fd, name, &q) != 0) {
            fprintf(stderr, "vivid-ctl: %s: no control named \"%s\"\n", argv[1], name);
            rc = 1;
            continue;
        }
        struct v4l2_ext_control c;
        memset(&c, 0, sizeof c);
        c.id = q.id;
        if (q.type == V4L2_CTRL_TYPE_INTEGER64)
            c.value64 = strtoll(eq + 1, NULL, 0);
        else
            c.value = (int)strtol(eq + 1, NULL, 0);
        struct v4l2_ext_controls cs;
        memset(&cs, 0, sizeof cs);
        cs.which = V4L2_CTRL_WHICH_CUR_VAL;
        cs.count = 1;
        cs.controls = &c;
        if (ioctl(fd, VIDIOC_S_EXT_CTRLS, &cs) != 0) {
            fprintf(stderr, "vivid-ctl: %s: set \"%s\": %s\n", argv[1], q.name, strerror(errno));
            rc = 1;
        } else {
            printf("vivid-ctl: %s: \"%s\" = %s\n", argv[1], q.name, eq + 1);
        }
    }
    close(fd);
    return rc;
}
