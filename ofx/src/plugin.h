/* Shared state of the vdiff OFX plugin: host suites, the model catalogue, per-instance data. */
#ifndef VDIFF_PLUGIN_H
#define VDIFF_PLUGIN_H

#include "frames_client.h"
#include "platform.h"
#include "vdiff_ofx_abi.h"

#define VDIFF_PLUGIN_ID "org.vdiff.enhance"
#define VDIFF_VERSION_MAJOR 0
#define VDIFF_VERSION_MINOR 1
#define VDIFF_CLIENT_NAME "vdiff-ofx 0.1"

/* parameter names (stable: hosts store projects by them) */
#define P_MODEL "model"
#define P_PREVIEW "previewModel"
#define P_DEFAULT_STRENGTH "defaultStrength"
#define P_STRENGTH "strength"
#define P_TILE "tile"
#define P_MIX "mix"

/* preview choice entries before the model names */
#define PREVIEW_SAME 0
#define PREVIEW_SOURCE 1
#define PREVIEW_FIRST_MODEL 2

extern const OfxPropertySuiteV1 *g_prop;
extern const OfxImageEffectSuiteV1 *g_effect;
extern const OfxParameterSuiteV1 *g_param;
extern const OfxMessageSuiteV1 *g_msg1;
extern const OfxMessageSuiteV2 *g_msg2;

/* The model list the choice params were described with: choice indices refer to it for the whole
 * process lifetime, so it is filled once (describe) and never reordered. */
typedef struct vd_catalogue {
    vd_model models[VD_MAX_MODELS];
    int count;
    const char *source; /* "server", "install" or "fallback" */
} vd_catalogue;
extern vd_catalogue g_cat;

void catalogue_load(void); /* describe action */

typedef struct vd_session_slot {
    char model[VD_NAME_MAX];
    float strength; /* NaN = default */
    uint32_t tile;
    uint32_t id;
    int scale, window;
} vd_session_slot;

#define MAX_SLOTS 4

typedef struct instance {
    OfxImageEffectHandle effect;
    OfxImageClipHandle src, dst;
    OfxParamHandle p_model, p_preview, p_default_strength, p_strength, p_tile, p_mix;
    vd_mutex *lock; /* renders, RoD and RoI may arrive on different host threads */
    vd_conn conn;
    vd_session_slot slots[MAX_SLOTS];
    int nslots;
    vd_model live[VD_MAX_MODELS]; /* LIST_MODELS of the connected server, for scale/window/strength range */
    int nlive;
    vd_shm in_shm, out_shm;
    /* what out_shm holds: hosts that render in tiles ask for the same frame once per tile, and the model
     * must see the whole frame anyway, so later tiles reuse the result (keyed by the host's image ids) */
    char cached[1024];
    int showing_message;
    char last_message[256]; /* modal-only hosts: do not pop the same dialog for every frame */
    int64_t last_message_ms;
} instance;

instance *instance_get(OfxImageEffectHandle effect);
OfxStatus instance_create(OfxImageEffectHandle effect);
OfxStatus instance_destroy(OfxImageEffectHandle effect);

/* The model a render uses, after preview rules. bypass: show the source instead. */
typedef struct vd_choice {
    const vd_model *model;
    int bypass;
    float strength; /* NaN = model default */
    uint32_t tile;
    double mix;
} vd_choice;

void choose_model(instance *in, OfxTime t, int preview, vd_choice *out);
const vd_model *model_info(instance *in, const char *name);

/* Connection + session for a choice; -1 with err on failure (connection kept if the error was the server's). */
int instance_session(instance *in, const vd_choice *ch, vd_session_slot **slot, vd_err *err);
void instance_drop_connection(instance *in);

/* User-facing error through the host's message suite (persistent where the host supports it). */
void report_error(instance *in, const char *fmt, ...);
void clear_error(instance *in);

OfxStatus describe(OfxImageEffectHandle effect);
OfxStatus describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle in_args);
OfxStatus action_render(instance *in, OfxPropertySetHandle in_args);
OfxStatus action_rod(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args);
OfxStatus action_roi(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args);
OfxStatus action_frames_needed(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args);
OfxStatus action_is_identity(instance *in, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args);
OfxStatus action_clip_preferences(instance *in, OfxPropertySetHandle out_args);

#endif
