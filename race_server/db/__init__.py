"""PostgreSQL: the pool, the migrations, the embedded server and one repository per aggregate."""
