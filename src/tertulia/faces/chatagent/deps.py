"""Who is calling the ChatAgent face: `Authorization: Bearer <access token or API key>`."""

from tertulia.faces.deps import BearerPrincipal

CurrentPrincipal = BearerPrincipal
