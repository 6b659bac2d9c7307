// The inspector page's script (placeholder).
"use strict";
