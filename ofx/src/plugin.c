/* Entry points of the OFX binary: the plugin table, setHost, and the action dispatcher.
 *
 * Every action is guarded: a NULL handle or a missing suite yields an OFX error status, never a crash,
 * because a plugin crash takes the whole editing session down with it. */
#include <string.h>

#include "plugin.h"
#include "server_link.h"

const OfxPropertySuiteV1 *g_prop;
const OfxImageEffectSuiteV1 *g_effect;
const OfxParameterSuiteV1 *g_param;
const OfxMessageSuiteV1 *g_msg1;
const OfxMessageSuiteV2 *g_msg2;
static OfxHost *g_host;

static void set_host(OfxHost *host) { g_host = host; }

static OfxStatus on_load(void) {
    if (!g_host || !g_host->fetchSuite) return kOfxStatErrMissingHostFeature;
    g_prop = (const OfxPropertySuiteV1 *)g_host->fetchSuite(g_host->host, kOfxPropertySuite, 1);
    g_effect = (const OfxImageEffectSuiteV1 *)g_host->fetchSuite(g_host->host, kOfxImageEffectSuite, 1);
    g_param = (const OfxParameterSuiteV1 *)g_host->fetchSuite(g_host->host, kOfxParameterSuite, 1);
    g_msg2 = (const OfxMessageSuiteV2 *)g_host->fetchSuite(g_host->host, kOfxMessageSuite, 2);
    g_msg1 = (const OfxMessageSuiteV1 *)g_host->fetchSuite(g_host->host, kOfxMessageSuite, 1);
    if (!g_prop || !g_effect || !g_param) return kOfxStatErrMissingHostFeature;
    vd_link_init();
    return kOfxStatOK;
}

static OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle in_args,
                            OfxPropertySetHandle out_args) {
    if (!action) return kOfxStatErrBadHandle;
    if (strcmp(action, kOfxActionLoad) == 0) return on_load();
    if (!g_prop || !g_effect || !g_param) return kOfxStatErrMissingHostFeature;
    if (strcmp(action, kOfxActionUnload) == 0) return kOfxStatOK;
    OfxImageEffectHandle effect = (OfxImageEffectHandle)handle;
    if (!effect) return kOfxStatErrBadHandle;
    if (strcmp(action, kOfxActionDescribe) == 0) return describe(effect);
    if (strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) return describe_in_context(effect, in_args);
    if (strcmp(action, kOfxActionCreateInstance) == 0) return instance_create(effect);
    if (strcmp(action, kOfxActionDestroyInstance) == 0) return instance_destroy(effect);

    instance *in = instance_get(effect);
    if (!in) return kOfxStatReplyDefault; /* actions we do not handle need no instance */
    if (strcmp(action, kOfxImageEffectActionRender) == 0) return in_args ? action_render(in, in_args) : kOfxStatErrBadHandle;
    /* clip preferences has no inArgs */
    if (strcmp(action, kOfxImageEffectActionGetClipPreferences) == 0)
        return out_args ? action_clip_preferences(in, out_args) : kOfxStatReplyDefault;
    if (!in_args || !out_args) return kOfxStatReplyDefault;
    if (strcmp(action, kOfxImageEffectActionGetRegionOfDefinition) == 0) return action_rod(in, in_args, out_args);
    if (strcmp(action, kOfxImageEffectActionGetRegionsOfInterest) == 0) return action_roi(in, in_args, out_args);
    if (strcmp(action, kOfxImageEffectActionGetFramesNeeded) == 0) return action_frames_needed(in, in_args, out_args);
    if (strcmp(action, kOfxImageEffectActionIsIdentity) == 0) return action_is_identity(in, in_args, out_args);
    return kOfxStatReplyDefault;
}

static OfxPlugin g_plugin = {
    kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, VDIFF_PLUGIN_ID, VDIFF_VERSION_MAJOR,
    VDIFF_VERSION_MINOR,      set_host,                        main_entry,
};

OFX_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }

OFX_EXPORT OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &g_plugin : NULL; }
