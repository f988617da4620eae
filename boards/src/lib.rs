//! fas-boards: board profiles, cross builds, packages and flashable images.
