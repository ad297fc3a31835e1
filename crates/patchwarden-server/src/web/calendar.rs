//! stub
use crate::routes::Routes;
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
}
