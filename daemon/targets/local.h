/* The built-in "local" compute target: this machine, --max-runs places. */
#pragma once

struct target_ops;

/* Its operations (runs/target.h); core registers the target at start. */
extern const struct target_ops local_target_ops;
